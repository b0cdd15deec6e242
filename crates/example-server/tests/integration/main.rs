//! Integration tests of the example server: the real binary over stdio, `serve_io` in
//! process, and Streamable HTTP / legacy SSE in process.

mod common;
mod http;
mod legacy;
mod modern;
mod stdio;
