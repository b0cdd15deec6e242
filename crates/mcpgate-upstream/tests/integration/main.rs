//! Integration tests of `mcpgate-upstream`: one binary, one module per transport, against
//! in-process fixture servers on 127.0.0.1:0 (HTTP), a bash fixture (stdio) and the example
//! server.

mod common;
mod example;
mod fixture;
mod legacy;
mod stdio;
mod streamable;
