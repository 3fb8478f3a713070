//! Many real client sessions in a realistic mix of states, opened concurrently.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::task::{JoinHandle, JoinSet};

use crate::common::pg::hold::with_application_name;
use crate::common::pg::Conn;
use crate::common::{poll_until, PgCluster};

/// Password of every role the benchmark creates.
pub const PASSWORD: &str = "bench-password";

/// The state a client session is left in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientState {
    /// Connected, no transaction (`idle`).
    Idle,
    /// `BEGIN` sent, nothing after it (`idle in transaction`).
    IdleInTransaction,
    /// Running `pg_sleep` (`active`).
    Active,
}

impl ClientState {
    /// The `application_name` sessions in this state use, so the mix shows several holders.
    fn application_name(self) -> &'static str {
        match self {
            ClientState::Idle => "web",
            ClientState::IdleInTransaction => "django",
            ClientState::Active => "report",
        }
    }
}

/// How many sessions of each state for `n` clients: 5 % active, 10 % idle in transaction
/// (at least one of each), the rest idle.
pub fn mix(n: usize) -> Vec<ClientState> {
    let active = (n * 5 / 100).max(1);
    let iit = (n / 10).max(1);
    (0..n)
        .map(|i| {
            if i < active {
                ClientState::Active
            } else if i < active + iit {
                ClientState::IdleInTransaction
            } else {
                ClientState::Idle
            }
        })
        .collect()
}

/// Roles and a second database for the mix; `poolwatch` gets `pg_monitor`, as the README asks.
pub async fn prepare(pg: &PgCluster) {
    for role in ["app", "batch", "poolwatch"] {
        pg.create_role(role, PASSWORD, None).await;
    }
    pg.exec("GRANT pg_monitor TO poolwatch").await;
    pg.create_database("orders", None).await;
}

/// Open client sessions; dropping it ends them (sleeping backends end with the cluster).
pub struct Clients {
    /// Idle and idle-in-transaction sessions.
    held: Vec<Conn>,
    /// Tasks owning the sessions that run `pg_sleep`.
    sleeping: Vec<JoinHandle<()>>,
}

impl Clients {
    /// Opens `n` sessions in the [`mix`] on `pg`, at most 16 connection attempts at a time,
    /// spread over roles `app`/`batch` and databases `postgres`/`orders`; returns once the
    /// server shows every one of them in its state.
    pub async fn open(pg: &PgCluster, n: usize) -> Clients {
        let gate = Arc::new(Semaphore::new(16));
        let mut tasks = JoinSet::new();
        for (i, state) in mix(n).into_iter().enumerate() {
            let role = if i % 4 == 3 { "batch" } else { "app" };
            let db = if i % 2 == 0 { "postgres" } else { "orders" };
            let url = with_application_name(
                &pg.url_with_password(role, PASSWORD, db),
                state.application_name(),
            );
            let gate = gate.clone();
            tasks.spawn(async move {
                let _permit = gate.acquire_owned().await.expect("semaphore open");
                let conn = Conn::open(&url, false)
                    .await
                    .unwrap_or_else(|e| panic!("client connection {i}: {e:?}"));
                if state == ClientState::IdleInTransaction {
                    conn.client.batch_execute("BEGIN").await.expect("BEGIN");
                }
                (state, conn)
            });
        }
        let mut clients = Clients {
            held: Vec::with_capacity(n),
            sleeping: Vec::new(),
        };
        while let Some(joined) = tasks.join_next().await {
            let (state, conn) = joined.expect("connection task");
            if state == ClientState::Active {
                clients.sleeping.push(tokio::spawn(async move {
                    let _ = conn.client.simple_query("SELECT pg_sleep(3600)").await;
                    drop(conn);
                }));
            } else {
                clients.held.push(conn);
            }
        }
        clients.wait_visible(pg, n).await;
        clients
    }

    /// Waits until `pg_stat_activity` shows the mix (the `pg_sleep` queries are in flight).
    async fn wait_visible(&self, pg: &PgCluster, n: usize) {
        let want = mix(n);
        let count = |s: ClientState| want.iter().filter(|&&x| x == s).count() as i64;
        let expected = (
            count(ClientState::Idle),
            count(ClientState::IdleInTransaction),
            count(ClientState::Active),
        );
        let sql = "SELECT count(*) FILTER (WHERE state = 'idle'), \
                          count(*) FILTER (WHERE state = 'idle in transaction'), \
                          count(*) FILTER (WHERE state = 'active') \
                     FROM pg_stat_activity WHERE application_name IN ('web', 'django', 'report')";
        let seen = poll_until(Duration::from_secs(60), || async {
            let rows = pg.query(sql).await;
            let got: (i64, i64, i64) = (rows[0].get(0), rows[0].get(1), rows[0].get(2));
            (got == expected).then_some(got)
        })
        .await;
        assert!(
            seen.is_some(),
            "port {}: clients not visible as {expected:?} (idle, idle in transaction, active)",
            pg.port()
        );
    }

    /// How many sessions are open.
    pub fn len(&self) -> usize {
        self.held.len() + self.sleeping.len()
    }

    /// Opens idle sessions (application `web`, roles and databases spread as in
    /// [`Clients::open`]) until `n` are open, and returns once the server shows that many.
    pub async fn grow_to(&mut self, pg: &PgCluster, n: usize) {
        let gate = Arc::new(Semaphore::new(16));
        let mut tasks = JoinSet::new();
        for i in self.len()..n {
            let role = if i % 4 == 3 { "batch" } else { "app" };
            let db = if i % 2 == 0 { "postgres" } else { "orders" };
            let url = with_application_name(
                &pg.url_with_password(role, PASSWORD, db),
                ClientState::Idle.application_name(),
            );
            let gate = gate.clone();
            tasks.spawn(async move {
                let _permit = gate.acquire_owned().await.expect("semaphore open");
                Conn::open(&url, false)
                    .await
                    .unwrap_or_else(|e| panic!("client connection {i}: {e:?}"))
            });
        }
        while let Some(joined) = tasks.join_next().await {
            self.held.push(joined.expect("connection task"));
        }
        let want = self.len() as i64;
        let sql = "SELECT count(*) FROM pg_stat_activity \
                    WHERE application_name IN ('web', 'django', 'report')";
        let seen = poll_until(Duration::from_secs(60), || async {
            let rows = pg.query(sql).await;
            (rows[0].get::<_, i64>(0) == want).then_some(())
        })
        .await;
        assert!(
            seen.is_some(),
            "port {}: not {want} client sessions after 60 s",
            pg.port()
        );
    }
}

impl Drop for Clients {
    fn drop(&mut self) {
        for task in &self.sleeping {
            task.abort();
        }
    }
}
