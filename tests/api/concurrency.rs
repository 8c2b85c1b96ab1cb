//! Many calls at once. On SQLite nexkey commits the calls that wait together (one transaction,
//! a savepoint each); whatever the backend, each call must keep its own outcome: a refused call
//! beside answered ones leaves nothing behind, and the answered ones are all stored.

use std::collections::HashSet;

use serde_json::Value;

use crate::helpers::{backends, codes, current_new, json, legacy_new};

fn bought_by(mut body: Value, email: &str) -> Value {
    body["user"]["email"] = email.into();
    body
}

#[tokio::test]
async fn calls_answered_together_keep_their_own_outcomes() {
    for app in backends().await {
        let victim = bought_by(legacy_new("GC-VICTIM", "ACME-PRO", 1), "victim@example.com");
        let (status, first) = json(app.call("new", &victim).await).await;
        assert_eq!(status, 200, "{}: {first}", app.backend);

        // Sales to buyers of their own, and among them calls refused only after their first
        // write (their identity claimed): another buyer's `new` under the victim's fulfillment id.
        let sale = |i: usize| {
            bought_by(
                legacy_new(&format!("GC-{i}"), "ACME-PRO", 1),
                &format!("buyer-{i}@example.com"),
            )
        };
        let intruder = |i: usize| {
            let mut body = current_new("GC-VICTIM", &format!("ORD-X{i}"), "ACME-PRO");
            body["checkout"]["subscriptionId"] = format!("SUB-X{i}").into();
            bought_by(body, "stranger@example.com")
        };
        let calls: Vec<(bool, Value)> = (0..60)
            .map(|i| {
                if i % 5 == 4 {
                    (false, intruder(i))
                } else {
                    (true, sale(i))
                }
            })
            .collect();
        let answers = futures::future::join_all(
            calls
                .iter()
                .map(|(_, body)| async { json(app.call("new", body).await).await }),
        )
        .await;

        let mut issued = HashSet::new();
        for ((sale, body), (status, answer)) in calls.iter().zip(&answers) {
            if *sale {
                assert_eq!(*status, 200, "{}: {body} -> {answer}", app.backend);
                let codes = codes(answer);
                assert_eq!(codes.len(), 1, "{answer}");
                assert!(issued.insert(codes[0].clone()), "a code issued twice");
            } else {
                assert_eq!(*status, 409, "{}: {body} -> {answer}", app.backend);
                assert_eq!(answer["error"]["code"], "REFERENCES_DISAGREE", "{answer}");
            }
        }
        // Customers, calls, licenses, events: the victim's and the 48 sales', none of the
        // refused calls' (not even their claimed identities, nor the stranger).
        assert_eq!(app.row_counts().await, [49, 49, 49, 49], "{}", app.backend);

        // Every answer is the stored one, and a refused call is refused again, not replayed.
        for ((_, body), (status, answer)) in calls.iter().zip(&answers) {
            let again = json(app.call("new", body).await).await;
            assert_eq!(again, (*status, answer.clone()), "{}: {body}", app.backend);
        }
        assert_eq!(app.row_counts().await, [49, 49, 49, 49], "{}", app.backend);
    }
}
