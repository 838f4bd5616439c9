//! `autobahn_client URL AGENT`: runs every case of an Autobahn TestSuite fuzzing server
//! (the client is `adapters/examples/autobahn.rs`, shared with tether-tokio), on async-io.
//!
//! ```text
//! cargo run --release -p tether-async-std --example autobahn_client -- ws://127.0.0.1:9001 tether-async-std
//! ```

use tether_async_std as ws;

#[path = "../../examples/autobahn.rs"]
mod autobahn;

fn main() -> Result<(), ws::Error> {
    async_io::block_on(autobahn::run("tether-async-std"))
}
