//! The legacy HTTP+SSE transport against the fixture server.
