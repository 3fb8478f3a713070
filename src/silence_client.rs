//! `poolwatch silence add|list|expire`: a client of a running poolwatch's `/api/v1/silences`.
//! Exit codes: 0 done, 1 when poolwatch cannot be reached or refuses (its message printed).

use clap::Subcommand;
use serde_json::{json, Value};
use std::time::Duration;

/// What `poolwatch silence` does.
#[derive(Debug, Subcommand)]
pub enum Action {
    /// Create a silence: alerts every matcher matches are not notified until it ends.
    Add {
        /// A Prometheus matcher (`target="orders-db"`); repeat for more, all must match.
        #[arg(long = "matcher", required = true)]
        matchers: Vec<String>,
        /// Who silences.
        #[arg(long)]
        author: String,
        /// Why.
        #[arg(long)]
        comment: String,
        /// How long, e.g. `2h`.
        #[arg(long, default_value = "1h")]
        duration: String,
    },
    /// List active and recently expired silences.
    List,
    /// End a silence now.
    Expire {
        /// The silence's id.
        id: String,
    },
}

/// Runs `action` against the poolwatch at `url`; returns the exit code.
pub async fn run(url: &str, action: Action) -> i32 {
    let base = format!("{}/api/v1/silences", url.trim_end_matches('/'));
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .user_agent(crate::notify::USER_AGENT)
        .build()
    {
        Ok(c) => c,
        Err(e) => return fail(&format!("cannot build an HTTP client: {e}")),
    };
    let request = match &action {
        Action::Add {
            matchers,
            author,
            comment,
            duration,
        } => client
            .post(&base)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(
                json!({
                    "matchers": matchers, "createdBy": author, "comment": comment,
                    "duration": duration,
                })
                .to_string(),
            ),
        Action::List => client.get(&base),
        Action::Expire { id } => client.delete(format!("{base}/{id}")),
    };
    let answer = match request.send().await {
        Ok(r) => {
            let status = r.status();
            let body = r.bytes().await.unwrap_or_default();
            (
                status,
                serde_json::from_slice::<Value>(&body).unwrap_or_default(),
            )
        }
        Err(e) => {
            return fail(&format!(
                "cannot reach {base}: {}",
                crate::errtext::chain(&e)
            ))
        }
    };
    if !answer.0.is_success() {
        let message = answer.1["error"].as_str().unwrap_or("no message");
        return fail(&format!("HTTP {}: {message}", answer.0));
    }
    match action {
        Action::Add { .. } => println!("{}", answer.1["data"]["id"].as_str().unwrap_or("?")),
        Action::List => print!("{}", list_text(&answer.1)),
        Action::Expire { id } => println!("expired {id}"),
    }
    0
}

fn fail(message: &str) -> i32 {
    eprintln!("poolwatch silence: {message}");
    1
}

/// One line per silence: id, state, end, author, matchers, comment.
fn list_text(answer: &Value) -> String {
    let empty = Vec::new();
    let silences = answer["data"]["silences"].as_array().unwrap_or(&empty);
    let mut out = String::new();
    for s in silences {
        let text = |k: &str| s[k].as_str().unwrap_or("").to_string();
        let matchers: Vec<&str> = s["matchers"]
            .as_array()
            .map(|m| m.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        out.push_str(&format!(
            "{}  {:<7}  until {}  by {}  {{{}}}  {}\n",
            text("id"),
            text("state"),
            text("endsAt"),
            text("createdBy"),
            matchers.join(", "),
            text("comment"),
        ));
    }
    if silences.is_empty() {
        out.push_str("no silences\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_lines() {
        let answer = json!({"data": {"silences": [{
            "id": "0123456789abcdef", "state": "active", "endsAt": "2026-12-01T20:00:00Z",
            "createdBy": "ana", "matchers": ["target=\"db\"", "alertname=~\"Pool.*\""],
            "comment": "deploy"
        }]}});
        assert_eq!(
            list_text(&answer),
            "0123456789abcdef  active   until 2026-12-01T20:00:00Z  by ana  {target=\"db\", alertname=~\"Pool.*\"}  deploy\n"
        );
        assert_eq!(list_text(&json!({})), "no silences\n");
    }
}
