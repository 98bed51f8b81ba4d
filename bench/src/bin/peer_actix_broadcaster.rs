//! What actix-web users write for SSE fan-out without ssekit: the broadcaster
//! of the actix examples over `actix-web-lab`'s `sse` module. Each client is an
//! `mpsc::Sender<sse::Event>` (capacity 10) in a `Mutex<Vec<_>>`; a broadcast
//! clones the list and awaits a send to every client, so one client that stops
//! reading stalls every broadcast: that is the pattern being measured. Stale
//! clients are swept by a ping every 10 s, as in the example. Only a comparison
//! server for the load benchmarks (BENCHMARKS.md); `--history` is ignored.
//!
//! Run with: `cargo run --release -p ssekit-bench --bin peer_actix_broadcaster -- --port 0`

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, Responder, web};
use actix_web_lab::sse;
use ssekit_bench::peer;
use tokio::sync::mpsc;

#[derive(Default)]
struct Broadcaster {
    clients: Mutex<Vec<mpsc::Sender<sse::Event>>>,
}

impl Broadcaster {
    fn clients(&self) -> std::sync::MutexGuard<'_, Vec<mpsc::Sender<sse::Event>>> {
        self.clients.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn new_client(&self) -> impl Responder + use<> {
        let (tx, rx) = mpsc::channel(10);
        let _ = tx.send(sse::Data::new("connected").into()).await;
        self.clients().push(tx);
        sse::Sse::from_infallible_receiver(rx)
    }

    async fn broadcast(&self, message: &str) {
        let clients = self.clients().clone();
        let sends = clients.iter().map(|client| client.send(sse::Data::new(message.to_owned()).into()));
        // Failed sends are clients that left; the ping sweeps them.
        let _ = futures_util::future::join_all(sends).await;
    }

    async fn remove_stale_clients(&self) {
        let clients = self.clients().clone();
        let mut ok = Vec::new();
        for client in clients {
            if client.send(sse::Event::Comment("ping".into())).await.is_ok() {
                ok.push(client);
            }
        }
        *self.clients() = ok;
    }
}

#[derive(Default)]
struct Topics(Mutex<HashMap<String, Arc<Broadcaster>>>);

impl Topics {
    fn get(&self, topic: &str) -> Arc<Broadcaster> {
        let mut topics = self.0.lock().unwrap_or_else(|e| e.into_inner());
        Arc::clone(topics.entry(topic.to_owned()).or_default())
    }

    fn all(&self) -> Vec<Arc<Broadcaster>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).values().cloned().collect()
    }
}

async fn events(topics: web::Data<Topics>, req: HttpRequest) -> impl Responder {
    topics.get(&peer::topic(Some(req.query_string()))).new_client().await
}

async fn bench(topics: web::Data<Topics>, req: HttpRequest) -> HttpResponse {
    let bench = match peer::Bench::parse(Some(req.query_string())) {
        Ok(bench) => bench,
        Err(err) => return HttpResponse::BadRequest().body(format!(r#"{{"error":{err:?}}}"#)),
    };
    let broadcaster = topics.get(&bench.topic);
    let answer = bench
        .run(|data| {
            let broadcaster = Arc::clone(&broadcaster);
            async move { broadcaster.broadcast(&data).await }
        })
        .await;
    HttpResponse::Ok().content_type("application/json").body(answer)
}

async fn health(topics: web::Data<Topics>) -> HttpResponse {
    let subscribers: usize = topics.all().iter().map(|b| b.clients().len()).sum();
    HttpResponse::Ok().content_type("application/json").body(format!(r#"{{"subscribers":{subscribers}}}"#))
}

fn main() -> std::io::Result<()> {
    let args = peer::Args::from_env();
    let listener = args.bind()?;
    actix_rt::System::new().block_on(async move {
        let topics = web::Data::new(Topics::default());
        let pinger = topics.clone();
        actix_rt::spawn(async move {
            let mut interval = actix_rt::time::interval(Duration::from_secs(10));
            loop {
                interval.tick().await;
                for broadcaster in pinger.all() {
                    broadcaster.remove_stale_clients().await;
                }
            }
        });
        HttpServer::new(move || {
            App::new()
                .app_data(topics.clone())
                .route("/events", web::get().to(events))
                .route("/bench", web::post().to(bench))
                .route("/health", web::get().to(health))
        })
        .listen(listener)?
        .run()
        .await
    })
}
