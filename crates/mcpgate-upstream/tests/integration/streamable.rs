//! The Streamable HTTP transport against the fixture server.
