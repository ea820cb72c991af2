//! The admin socket: requests from a real client answered by the same
//! executor the CLI uses locally, the peer check, the file's mode, stale
//! and live sockets, and the "no server" answers the CLI falls back on.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use civitas_registry::{
    AdminClient, AdminError, AdminRequest, AdminResponse, AdminServer, NewThing, PeerAccess,
    current_uid,
};
use common::*;
use tokio_util::sync::CancellationToken;

fn call(path: &Path, request: AdminRequest) -> AdminResponse {
    let mut client = AdminClient::connect(path)
        .expect("connect")
        .expect("a server is running");
    client.call(&request).expect("call")
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.expect("blocking task")
}

fn serve(
    f: &Fixture,
    access: Option<PeerAccess>,
) -> (PathBuf, CancellationToken, tokio::task::JoinHandle<()>) {
    let path = f.dir.path().join("admin.sock");
    let mut server = AdminServer::bind(&path).expect("bind");
    if let Some(access) = access {
        server = server.with_access(access);
    }
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(server.serve(f.registry.clone(), shutdown.clone()));
    (path, shutdown, task)
}

#[tokio::test]
async fn requests_are_answered_over_the_socket() {
    let f = fixture();
    let (path, shutdown, task) = serve(&f, None);
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );

    let p = path.clone();
    let responses = blocking(move || {
        let mut client = AdminClient::connect(&p).unwrap().unwrap();
        let mut out = vec![client.call(&AdminRequest::Ping).unwrap()];
        out.push(
            client
                .call(&AdminRequest::CreateThing {
                    thing: NewThing {
                        name: "lamp-1".into(),
                        ..NewThing::default()
                    },
                })
                .unwrap(),
        );
        out.push(
            client
                .call(&AdminRequest::DescribeThing {
                    name: "ghost".into(),
                })
                .unwrap(),
        );
        out
    })
    .await;
    assert_eq!(responses[0], AdminResponse::Done);
    assert!(matches!(&responses[1], AdminResponse::Thing(t) if t.name == "lamp-1"));
    match &responses[2] {
        AdminResponse::Error(p) => {
            assert_eq!(p.code, "not_found");
            assert_eq!(p.message, "thing \"ghost\" does not exist");
        }
        other => panic!("{other:?}"),
    }
    // The change went through the server's registry, as the operator.
    let events = f.events.take();
    let create = events.iter().find(|e| e.action == "CreateThing").unwrap();
    assert_eq!(
        create.actor,
        format!("uid:{} via admin-socket", current_uid())
    );

    // A line that is not a request gets a bad_request answer.
    let p = path.clone();
    let raw = blocking(move || {
        let mut stream = UnixStream::connect(&p).unwrap();
        stream.write_all(b"{\"op\":\"launch_rockets\"}\n").unwrap();
        let mut line = String::new();
        BufReader::new(stream).read_line(&mut line).unwrap();
        line
    })
    .await;
    let response: AdminResponse = serde_json::from_str(&raw).unwrap();
    assert!(matches!(response, AdminResponse::Error(p) if p.code == "bad_request"));

    // Shutting down removes the socket; a client then finds no server.
    shutdown.cancel();
    task.await.unwrap();
    assert!(!path.exists());
    assert!(AdminClient::connect(&path).unwrap().is_none());
}

#[tokio::test]
async fn peers_of_another_user_are_refused() {
    let f = fixture();
    let me = current_uid();
    let access = PeerAccess {
        owner_uid: me.wrapping_add(1),
        allow_root: false,
    };
    assert!(!access.allows(me));
    assert!(PeerAccess::current_user().allows(me));
    assert!(PeerAccess::current_user().allows(0));
    let (path, shutdown, task) = serve(&f, Some(access));
    let response = blocking(move || call(&path, AdminRequest::ListThings)).await;
    match response {
        AdminResponse::Error(p) => {
            assert_eq!(p.code, "forbidden");
            assert!(p.message.contains(&format!("uid {me}")), "{}", p.message);
        }
        other => panic!("{other:?}"),
    }
    assert!(f.events.take().is_empty());
    shutdown.cancel();
    task.await.unwrap();
}

#[tokio::test]
async fn live_sockets_are_kept_and_stale_ones_replaced() {
    let f = fixture();
    let (path, shutdown, task) = serve(&f, None);
    assert!(matches!(
        AdminServer::bind(&path),
        Err(AdminError::InUse { .. })
    ));
    shutdown.cancel();
    task.await.unwrap();

    // A socket file nobody listens on (a server that was killed).
    let stale = std::os::unix::net::UnixListener::bind(&path).unwrap();
    drop(stale);
    assert!(path.exists());
    assert!(AdminClient::connect(&path).unwrap().is_none());
    let server = AdminServer::bind(&path).unwrap();
    assert_eq!(server.path(), path);

    // Anything else at that path is left alone.
    let other = f.dir.path().join("not-a-socket");
    std::fs::write(&other, b"x").unwrap();
    assert!(AdminServer::bind(&other).is_err());
    assert_eq!(std::fs::read(&other).unwrap(), b"x");
}

/// Echoes its request, or refuses one that asks to be refused.
struct Echo;

impl civitas_registry::AdminService for Echo {
    fn execute(
        &self,
        actor: &civitas_registry::Actor,
        request: serde_json::Value,
    ) -> Result<serde_json::Value, civitas_registry::Problem> {
        if request["refuse"] == true {
            return Err(civitas_registry::Problem::new("invalid", "refused"));
        }
        Ok(
            serde_json::json!({"echo": request, "actor": format!("{actor:?}").contains("via admin-socket")}),
        )
    }
}

#[tokio::test]
async fn other_services_answer_their_own_requests() {
    let f = fixture();
    let path = f.dir.path().join("admin.sock");
    let server = AdminServer::bind(&path)
        .unwrap()
        .with_service("echo", std::sync::Arc::new(Echo));
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(server.serve(f.registry.clone(), shutdown.clone()));

    let p = path.clone();
    let answers = blocking(move || {
        let service = |service: &str, request: serde_json::Value| AdminRequest::Service {
            service: service.into(),
            request,
        };
        [
            call(&p, service("echo", serde_json::json!({"op": "list"}))),
            call(&p, service("echo", serde_json::json!({"refuse": true}))),
            call(&p, service("nobody", serde_json::json!({}))),
        ]
    })
    .await;
    assert_eq!(
        answers[0],
        AdminResponse::Service(serde_json::json!({"echo": {"op": "list"}, "actor": true}))
    );
    assert!(matches!(&answers[1], AdminResponse::Error(p) if p.code == "invalid"));
    assert!(matches!(&answers[2], AdminResponse::Error(p) if p.code == "not_found"));
    shutdown.cancel();
    task.await.unwrap();
}
