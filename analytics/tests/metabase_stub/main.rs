//! Provisioning against an in-process stub of Metabase's REST API.
//!
//! Real Metabase cannot run here, so the stub (`stub.rs`) plays it and
//! refuses every request off the documented shapes. The tests here pin what a
//! first run creates and that later runs create nothing.

mod stub;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use clap::Parser;
use orderstream_analytics::metabase::{provision, MetabaseArgs, MetabaseError, Provisioned, SetupOutcome, Step};
use orderstream_analytics::questions::{load_questions, Question};
use serde_json::{json, Value};

use stub::{Recorded, Stub, SETUP_TOKEN};

const ADMIN_PASSWORD: &str = "admin-Pa55-word-7f3a";
const WAREHOUSE_PASSWORD: &str = "analyst-Pa55-word-91c2";

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    metabase: MetabaseArgs,
}

fn args(stub: &Stub, extra: &[&str]) -> MetabaseArgs {
    let mut argv =
        vec!["provision", "--metabase-url", &stub.url, "--warehouse-password", WAREHOUSE_PASSWORD, "--wait-secs", "10"];
    argv.extend_from_slice(extra);
    Cli::try_parse_from(argv).unwrap().metabase
}

fn repository_questions() -> Vec<Question> {
    load_questions(&questions_folder()).unwrap()
}

fn questions_folder() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../metabase/questions")
}

fn run(stub: &Stub, password: &str, questions: &[Question]) -> Result<Provisioned, MetabaseError> {
    provision(&args(stub, &["--admin-password", password]), questions)
}

fn is_creation(request: &Recorded) -> bool {
    request.method == "POST"
        && ["/api/database", "/api/collection", "/api/card", "/api/dashboard"].contains(&request.path.as_str())
}

/// Whether two dashcards share a grid cell.
fn overlap(a: &Value, b: &Value) -> bool {
    let span = |card: &Value, start: &str, size: &str| {
        let start = card[start].as_i64().unwrap();
        start..start + card[size].as_i64().unwrap()
    };
    let intersects = |x: std::ops::Range<i64>, y: std::ops::Range<i64>| x.start < y.end && y.start < x.end;
    intersects(span(a, "col", "size_x"), span(b, "col", "size_x"))
        && intersects(span(a, "row", "size_y"), span(b, "row", "size_y"))
}

// ---------------------------------------------------------------------------
// The tests
// ---------------------------------------------------------------------------

#[test]
fn first_run_claims_setup_and_creates_everything() {
    let stub = Stub::start(2);
    let questions = repository_questions();
    assert_eq!(questions.len(), 8);

    let provisioned = run(&stub, ADMIN_PASSWORD, &questions).unwrap();

    stub.assert_no_violations();
    assert_eq!(provisioned.setup, SetupOutcome::Claimed);
    assert_eq!(
        (provisioned.database.created, provisioned.collection.created, provisioned.dashboard.created),
        (1, 1, 1)
    );
    assert_eq!((provisioned.cards.created, provisioned.cards.updated), (8, 0));

    let requests = stub.requests();
    let setup: Vec<&Recorded> = requests.iter().filter(|request| request.path == "/api/setup").collect();
    assert_eq!(setup.len(), 1, "setup is claimed exactly once");
    let setup_body = setup[0].body.as_ref().unwrap();
    assert_eq!(setup_body["token"], SETUP_TOKEN);
    assert_eq!(setup_body["user"]["email"], "admin@orderstream.local");
    assert_eq!(setup_body["user"]["password"], ADMIN_PASSWORD);
    assert_eq!(setup_body["prefs"]["allow_tracking"], false);
    let setup_index = requests.iter().position(|request| request.path == "/api/setup").unwrap();
    assert!(requests[..setup_index].iter().all(|request| request.method == "GET" && request.session.is_none()));
    assert!(
        requests[setup_index + 1..].iter().all(|request| request.session.as_deref() == Some("session-1")),
        "every request after setup carries its session"
    );
    assert!(!requests.iter().any(|request| request.path == "/api/session"), "a fresh Metabase needs no login");

    let state = stub.state();
    assert_eq!(state.databases.len(), 1);
    let database = &state.databases[0];
    assert_eq!(database["name"], "orderstream warehouse");
    assert_eq!(database["engine"], "postgres");
    assert_eq!(
        database["details"],
        json!({ "host": "127.0.0.1", "port": 5433, "dbname": "orderstream", "user": "orderstream_analyst", "password": WAREHOUSE_PASSWORD, "ssl": false })
    );

    assert_eq!(state.collections.len(), 1);
    assert_eq!(state.collections[0]["name"], "orderstream");
    let collection_id = state.collections[0]["id"].clone();

    assert_eq!(state.cards.len(), 8);
    for question in &questions {
        let card = state.cards.iter().find(|card| card["name"] == question.title.as_str()).unwrap();
        assert_eq!(card["collection_id"], collection_id);
        assert_eq!(card["display"], question.display.as_str());
        assert_eq!(card["dataset_query"]["database"], database["id"]);
        assert_eq!(card["dataset_query"]["native"]["query"], question.sql.as_str(), "{}", question.key);
        let tags = card["dataset_query"]["native"]["template-tags"].as_object().unwrap();
        assert_eq!(tags.contains_key("month"), question.has_month_parameter(), "{}", question.key);
    }

    assert_eq!(state.dashboards.len(), 1);
    let dashboard = &state.dashboards[0];
    assert_eq!(dashboard["name"], "Orders and baskets analysis");
    assert_eq!(dashboard["collection_id"], collection_id);
    assert_eq!(dashboard["parameters"][0]["slug"], "month");
    assert_eq!(dashboard["parameters"][0]["type"], "date/single");
    let dashcards = dashboard["dashcards"].as_array().unwrap();
    assert_eq!(dashcards.len(), 8);
    let card_ids: HashSet<i64> = dashcards.iter().map(|dashcard| dashcard["card_id"].as_i64().unwrap()).collect();
    assert_eq!(card_ids, state.cards.iter().map(|card| card["id"].as_i64().unwrap()).collect());
    for (i, a) in dashcards.iter().enumerate() {
        for b in &dashcards[i + 1..] {
            assert!(!overlap(a, b), "dashcards overlap: {a} and {b}");
        }
    }
    let display_of = |dashcard: &Value| {
        state.cards.iter().find(|card| card["id"] == dashcard["card_id"]).unwrap()["display"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let by_display: BTreeMap<String, Vec<(i64, i64, i64, i64)>> =
        dashcards.iter().fold(BTreeMap::new(), |mut map, dashcard| {
            let place = ["row", "col", "size_x", "size_y"].map(|field| dashcard[field].as_i64().unwrap());
            map.entry(display_of(dashcard)).or_insert_with(Vec::new).push((place[0], place[1], place[2], place[3]));
            map
        });
    assert!(by_display["scalar"].iter().all(|&(row, _, x, y)| row == 0 && (x, y) == (6, 4)), "{by_display:?}");
    let table = by_display["table"][0];
    let bottom = dashcards.iter().map(|dashcard| dashcard["row"].as_i64().unwrap()).max().unwrap();
    assert_eq!((table.0, table.1, table.2), (bottom, 0, 24), "the data-quality table is full width at the bottom");
    for dashcard in dashcards {
        let card = state.cards.iter().find(|card| card["id"] == dashcard["card_id"]).unwrap();
        let mapped = !dashcard["parameter_mappings"].as_array().unwrap().is_empty();
        let has_month = card["dataset_query"]["native"]["template-tags"].get("month").is_some();
        assert_eq!(mapped, has_month, "the month filter reaches exactly the cards with the month tag");
    }
}

#[test]
fn second_run_creates_nothing_new() {
    let stub = Stub::start(0);
    let questions = repository_questions();
    run(&stub, ADMIN_PASSWORD, &questions).unwrap();
    let after_first = stub.counts();
    let dashcards_before = stub.state().dashboards[0]["dashcards"].clone();
    let first_requests = stub.requests().len();

    // The second run reads the admin password from a file, as compose does.
    let secret_dir = tempfile::tempdir().unwrap();
    let password_file = secret_dir.path().join("metabase_admin_password");
    std::fs::write(&password_file, format!("{ADMIN_PASSWORD}\n")).unwrap();
    let provisioned =
        provision(&args(&stub, &["--admin-password-file", password_file.to_str().unwrap()]), &questions).unwrap();

    stub.assert_no_violations();
    assert_eq!(stub.counts(), after_first);
    assert_eq!(after_first, (1, 1, 8, 1, 8));
    assert_eq!(stub.state().dashboards[0]["dashcards"], dashcards_before, "dashcards are kept, not recreated");
    assert_eq!(provisioned.setup, SetupOutcome::AlreadyDone);
    assert_eq!((provisioned.cards.created, provisioned.cards.updated, provisioned.cards.unchanged), (0, 0, 8));
    assert_eq!(
        (provisioned.collection.created, provisioned.dashboard.created, provisioned.dashboard.unchanged),
        (0, 0, 1)
    );
    assert_eq!(provisioned.database.created, 0);

    let second: Vec<Recorded> = stub.requests()[first_requests..].to_vec();
    assert!(
        second.iter().any(|request| request.method == "POST" && request.path == "/api/session"),
        "the second run logs in"
    );
    assert!(!second.iter().any(|request| request.path == "/api/setup"), "setup is never claimed twice");
    let creations: Vec<String> =
        second.iter().filter(|request| is_creation(request)).map(|request| request.path.clone()).collect();
    assert!(creations.is_empty(), "the second run created {creations:?}");
    assert!(
        second.iter().any(|request| request.method == "PUT" && request.path.starts_with("/api/database/")),
        "the password is re-applied"
    );
    assert!(!second.iter().any(|request| request.method == "PUT" && request.path.starts_with("/api/card/")));
    assert!(!second.iter().any(|request| request.method == "PUT" && request.path.starts_with("/api/dashboard/")));
}

#[test]
fn changed_question_is_updated_in_place() {
    let stub = Stub::start(0);
    let folder = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(questions_folder()).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, folder.path().join(path.file_name().unwrap())).unwrap();
    }
    run(&stub, ADMIN_PASSWORD, &load_questions(folder.path()).unwrap()).unwrap();
    let edited = folder.path().join("07_weekly_sales_and_orders.sql");
    let original = std::fs::read_to_string(&edited).unwrap();
    std::fs::write(&edited, original.replace("ORDER BY week;", "ORDER BY week DESC;")).unwrap();
    let questions = load_questions(folder.path()).unwrap();
    let changed = questions.iter().find(|question| question.key == "07_weekly_sales_and_orders").unwrap();
    assert_ne!(changed.sql, original, "the edit took");
    let card_id_before =
        stub.state().cards.iter().find(|card| card["name"] == changed.title.as_str()).unwrap()["id"].clone();

    let provisioned = run(&stub, ADMIN_PASSWORD, &questions).unwrap();

    stub.assert_no_violations();
    assert_eq!((provisioned.cards.created, provisioned.cards.updated, provisioned.cards.unchanged), (0, 1, 7));
    let state = stub.state();
    assert_eq!(state.cards.len(), 8);
    let card = state.cards.iter().find(|card| card["name"] == changed.title.as_str()).unwrap();
    assert_eq!(card["id"], card_id_before, "updated in place");
    assert_eq!(card["dataset_query"]["native"]["query"], changed.sql.as_str());
}

#[test]
fn wrong_password_is_a_clear_error_without_the_password() {
    let stub = Stub::start(0);
    let questions = repository_questions();
    run(&stub, ADMIN_PASSWORD, &questions).unwrap();
    let counts = stub.counts();
    let wrong = "wrong-Pa55-word-0d4e";

    let error = run(&stub, wrong, &questions).unwrap_err();

    assert!(matches!(error, MetabaseError::Rejected { step: Step::Login, status: 401, .. }), "{error:?}");
    assert!(!error.is_transient());
    let shown = format!("{error} / {error:?}");
    assert!(shown.contains("logging in") && shown.contains("401") && shown.contains("/api/session"), "{shown}");
    for secret in [wrong, ADMIN_PASSWORD, WAREHOUSE_PASSWORD] {
        assert!(!shown.contains(secret), "the error shows a password: {shown}");
    }
    assert_eq!(stub.counts(), counts, "nothing changed after a failed login");
}

#[test]
fn missing_password_is_reported_before_any_request() {
    let stub = Stub::start(0);
    let args =
        Cli::try_parse_from(["provision", "--metabase-url", &stub.url, "--warehouse-password", WAREHOUSE_PASSWORD])
            .unwrap()
            .metabase;
    if args.admin_password.is_some() || args.admin_password_file.is_some() {
        return; // ORDERSTREAM_METABASE_ADMIN_PASSWORD(_FILE) is set in this environment.
    }
    let error = provision(&args, &repository_questions()).unwrap_err();
    assert!(matches!(error, MetabaseError::MissingSecret { flag: "--admin-password", .. }), "{error:?}");
    assert!(stub.requests().is_empty());
}

#[test]
fn passwords_never_appear_in_debug_output() {
    let stub = Stub::start(1);
    let args = args(&stub, &["--admin-password", ADMIN_PASSWORD]);
    let debug = format!("{args:?}");
    assert!(debug.contains("<redacted>"), "{debug}");

    let logs = CapturedLogs::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(logs.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::TRACE)
        .finish();
    let provisioned =
        tracing::subscriber::with_default(subscriber, || provision(&args, &repository_questions())).unwrap();
    let logged = logs.text();
    let summary = provisioned.to_string();

    assert!(logged.contains("Metabase provisioned."), "the run logs: {logged}");
    assert!(summary.contains("created 8"), "{summary}");
    for shown in [&debug, &logged, &summary, &format!("{provisioned:?}")] {
        for secret in [ADMIN_PASSWORD, WAREHOUSE_PASSWORD] {
            assert!(!shown.contains(secret), "a password leaked into: {shown}");
        }
    }
}

/// A tracing writer that keeps what is written, for the log assertions.
#[derive(Clone, Default)]
struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

impl CapturedLogs {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for CapturedLogs {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for CapturedLogs {
    type Writer = CapturedLogs;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}
