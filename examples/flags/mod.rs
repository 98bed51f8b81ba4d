//! `--port N` for the small examples (0: pick a free port), and the address
//! line they print first, as the demo does.

use std::io::Write;
use std::net::SocketAddr;

/// The listener on `127.0.0.1:<--port>` (8080 without the flag); prints
/// `listening on http://127.0.0.1:PORT` as the first line of stdout. A bad flag
/// prints the usage and exits with code 2.
pub(crate) async fn listen() -> std::io::Result<tokio::net::TcpListener> {
    let mut args = std::env::args().skip(1);
    let port = match (args.next().as_deref(), args.next().map(|port| port.parse::<u16>())) {
        (None, _) => 8080,
        (Some("--port"), Some(Ok(port))) if args.next().is_none() => port,
        _ => {
            eprintln!("usage: [--port N]   (0: pick a free port)");
            std::process::exit(2);
        }
    };
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port))).await?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "listening on http://{}", listener.local_addr()?)?;
    stdout.flush()?;
    Ok(listener)
}
