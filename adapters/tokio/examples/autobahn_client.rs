//! `autobahn_client URL AGENT`: runs every case of an Autobahn TestSuite fuzzing server
//! (the client is `adapters/examples/autobahn.rs`, shared with tether-async-std), on a
//! single-threaded tokio runtime.
//!
//! ```text
//! cargo run --release -p tether-tokio --example autobahn_client -- ws://127.0.0.1:9001 tether-tokio
//! ```

use tether_tokio as ws;

#[path = "../../examples/autobahn.rs"]
mod autobahn;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), ws::Error> {
    autobahn::run("tether-tokio").await
}
