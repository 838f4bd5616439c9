//! The Autobahn TestSuite client, written once for both adapters: the `autobahn_client`
//! example of each (`adapters/{tokio,async-std}/examples/autobahn_client.rs`) includes this
//! file as a module, with the adapter crate in scope as `crate::ws`, and runs [`run`] on its
//! runtime.
//!
//! Asks `URL/getCaseCount` for the number of cases, connects to
//! `URL/runCase?case=N&agent=AGENT` for each and echoes every text and binary message until
//! the server closes, then asks `URL/updateReports?agent=AGENT` to write the report.
//! permessage-deflate is offered (with `client_no_context_takeover` and
//! `client_max_window_bits`), and every message is compressed.

use crate::ws::{ClientRequest, Config, Error, Message, WebSocket, connect_with};

/// Runs every case; the arguments are `URL AGENT` (`agent` names the adapter by default).
pub async fn run(agent: &str) -> Result<(), Error> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "ws://127.0.0.1:9001".to_owned());
    let agent = args.next().unwrap_or_else(|| agent.to_owned());
    let url = url.trim_end_matches('/');
    let mut config = Config::default();
    config.deflate.enabled = true;
    // Compress every message, however short (the Autobahn runner expects even 16-byte
    // echoes compressed).
    config.deflate.threshold = 0;
    // Offer client_no_context_takeover as well, so that every answer the 13.x cases try
    // (RFC 7692 §7.1.1.2, §7.1.2.2) can be given to this offer.
    config.deflate.client_no_context_takeover = true;

    let request = ClientRequest::new(&format!("{url}/getCaseCount"))?;
    let (mut ws, _) = connect_with(request, config.clone()).await?;
    let count: u32 = match ws.recv().await {
        Some(Ok(Message::Text(text))) => text.trim().parse().unwrap_or(0),
        other => {
            eprintln!("unexpected answer to getCaseCount: {other:?}");
            0
        }
    };
    drain(ws).await;
    eprintln!("{count} cases");

    for case in 1..=count {
        let request = ClientRequest::new(&format!("{url}/runCase?case={case}&agent={agent}"))?;
        match connect_with(request, config.clone()).await {
            Ok((mut ws, _)) => {
                while let Some(Ok(message)) = ws.recv().await {
                    if matches!(message, Message::Text(_) | Message::Binary(_))
                        && ws.send(message).await.is_err()
                    {
                        break;
                    }
                }
                drain(ws).await;
            }
            Err(e) => eprintln!("case {case}: {e}"),
        }
        if case % 50 == 0 {
            eprintln!("{case}/{count}");
        }
    }

    let request = ClientRequest::new(&format!("{url}/updateReports?agent={agent}"))?;
    let (mut ws, _) = connect_with(request, config).await?;
    // The server closes this connection itself once the reports are written.
    let _ = ws.close(1000, "").await;
    drain(ws).await;
    eprintln!("reports updated");
    Ok(())
}

/// Reads until the connection is closed.
async fn drain(mut ws: WebSocket) {
    while ws.recv().await.is_some() {}
}
