//! Interop with the project's example server (Streamable HTTP and legacy SSE, in process).
