//! Provisioning against an in-process stub of Metabase's REST API.
//!
//! Real Metabase cannot run here, so the stub (`stub.rs`) plays it as the
//! pinned version answers (MBQL 5 queries included) and refuses every request
//! off the documented shapes. The tests here pin what a first run creates,
//! that later runs change nothing, that an edited file changes exactly its
//! card, and that every request stays within Metabase's OpenAPI document
//! (`openapi_extract.json`).

mod stub;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use clap::Parser;
use orderstream_analytics::metabase::{
    provision, MetabaseArgs, MetabaseError, Provisioned, SetupOutcome, DEFAULT_METABASE_URL, EXIT_CREDENTIALS,
    EXIT_NO_METABASE, EXIT_USAGE,
};
use orderstream_analytics::questions::{load_questions, Question};
use serde_json::{json, Value};

use stub::{Recorded, Stub, SETUP_TOKEN};

const ADMIN_PASSWORD: &str = "admin-Pa55-word-7f3a";
const WAREHOUSE_PASSWORD: &str = "analyst-Pa55-word-91c2";
const API_KEY: &str = "mb_Zm9vYmFyLWFwaS1rZXktZnJvbS10ZXN0";

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    metabase: MetabaseArgs,
}

fn args(stub: &Stub, extra: &[&str]) -> MetabaseArgs {
    let mut argv =
        vec!["provision", "--metabase-url", &stub.url, "--warehouse-password", WAREHOUSE_PASSWORD, "--wait", "10s"];
    argv.extend_from_slice(extra);
    Cli::try_parse_from(argv).unwrap().metabase
}

fn repository_questions() -> Vec<Question> {
    load_questions(&questions_folder()).unwrap()
}

/// The repository's questions that Metabase shows (all but `only-in: report`).
fn metabase_questions() -> Vec<Question> {
    repository_questions().into_iter().filter(Question::in_metabase).collect()
}

/// A copy of the repository's question folder, to edit.
fn copied_questions() -> tempfile::TempDir {
    let folder = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(questions_folder()).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, folder.path().join(path.file_name().unwrap())).unwrap();
    }
    folder
}

/// Replaces `from` by `to` in one question file of `folder`.
fn edit(folder: &Path, file: &str, from: &str, to: &str) {
    let path = folder.join(file);
    let original = std::fs::read_to_string(&path).unwrap();
    assert!(original.contains(from), "{file} has no {from:?}");
    std::fs::write(&path, original.replace(from, to)).unwrap();
}

/// The stored card of `question`, found by title as provisioning finds it.
fn card_of(stub: &Stub, question: &Question) -> Value {
    stub.state().cards.iter().find(|card| card["name"] == question.title.as_str()).unwrap().clone()
}

/// A card's native stage, in the MBQL 5 shape the stub (like Metabase 0.57+) answers with.
fn stage(card: &Value) -> &Value {
    &card["dataset_query"]["stages"][0]
}

fn questions_folder() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../metabase/questions")
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
    let questions = metabase_questions();
    assert_eq!(questions.len(), 8);

    let provisioned = run(&stub, ADMIN_PASSWORD, &repository_questions()).unwrap();

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
    assert_eq!(setup_body["prefs"]["site_name"], "orderstream");
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
        assert_eq!(stage(card)["native"], question.sql.as_str(), "{}", question.key);
        let tags = stage(card)["template-tags"].as_object().unwrap();
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
    let key_figures = by_display["scalar"].iter().chain(&by_display["smartscalar"]);
    assert!(key_figures.clone().all(|&(row, _, x, y)| row == 0 && (x, y) == (6, 4)), "{by_display:?}");
    assert_eq!(key_figures.count(), 3, "two trend cards and the sales ratio");
    let table = by_display["table"][0];
    let bottom = dashcards.iter().map(|dashcard| dashcard["row"].as_i64().unwrap()).max().unwrap();
    assert_eq!((table.0, table.1, table.2), (bottom, 0, 24), "the data-quality table is full width at the bottom");
    for dashcard in dashcards {
        let card = state.cards.iter().find(|card| card["id"] == dashcard["card_id"]).unwrap();
        let mapped = !dashcard["parameter_mappings"].as_array().unwrap().is_empty();
        let has_month = stage(card)["template-tags"].get("month").is_some();
        assert_eq!(mapped, has_month, "the month filter reaches exactly the cards with the month tag");
    }
}

#[test]
fn second_run_creates_nothing_new() {
    let stub = Stub::start(0);
    let questions = repository_questions();
    run(&stub, ADMIN_PASSWORD, &questions).unwrap();
    assert!(
        stub.state().cards.iter().all(|card| card["dataset_query"]["lib/type"] == "mbql/query"),
        "the stub answers as Metabase 0.57+ does: MBQL 5, not what was sent"
    );
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
fn changed_sql_updates_exactly_its_card_in_place() {
    let stub = Stub::start(0);
    let folder = copied_questions();
    run(&stub, ADMIN_PASSWORD, &load_questions(folder.path()).unwrap()).unwrap();
    edit(folder.path(), "07_weekly_sales_and_orders.sql", "ORDER BY week;", "ORDER BY week DESC;");
    let questions = load_questions(folder.path()).unwrap();
    let changed = questions.iter().find(|question| question.key == "07_weekly_sales_and_orders").unwrap();
    let card_before = card_of(&stub, changed);

    let provisioned = run(&stub, ADMIN_PASSWORD, &questions).unwrap();

    stub.assert_no_violations();
    assert_eq!((provisioned.cards.created, provisioned.cards.updated, provisioned.cards.unchanged), (0, 1, 7));
    assert_eq!(provisioned.dashboard.updated, 0, "the same cards in the same places");
    let card = card_of(&stub, changed);
    assert_eq!(stub.state().cards.len(), 8);
    assert_eq!(card["id"], card_before["id"], "updated in place");
    assert_eq!(stage(&card)["native"], changed.sql.as_str());
    assert_ne!(card["description"], card_before["description"], "the card carries its new version");
}

#[test]
fn changed_presentation_header_updates_exactly_its_card() {
    let stub = Stub::start(0);
    let folder = copied_questions();
    run(&stub, ADMIN_PASSWORD, &load_questions(folder.path()).unwrap()).unwrap();
    edit(
        folder.path(),
        "05_weekly_basket_by_customer_type.sql",
        "-- y: average_basket\n",
        "-- y: average_basket\n-- currency: EUR\n",
    );
    let questions = load_questions(folder.path()).unwrap();
    let changed = questions.iter().find(|question| question.key == "05_weekly_basket_by_customer_type").unwrap();

    let provisioned = run(&stub, ADMIN_PASSWORD, &questions).unwrap();

    stub.assert_no_violations();
    assert_eq!((provisioned.cards.created, provisioned.cards.updated, provisioned.cards.unchanged), (0, 1, 7));
    let card = card_of(&stub, changed);
    assert_eq!(card["visualization_settings"]["column_settings"]["[\"name\",\"average_basket\"]"]["currency"], "EUR");
    assert_eq!(stage(&card)["native"], changed.sql.as_str(), "the SQL went along, header included");
}

#[test]
fn a_card_edited_in_metabase_is_restored() {
    let stub = Stub::start(0);
    let questions = repository_questions();
    run(&stub, ADMIN_PASSWORD, &questions).unwrap();
    let question = metabase_questions().into_iter().find(|question| question.display == "bar").unwrap();
    {
        // Someone edits the SQL in Metabase's editor; the description (and its version) stays.
        let mut state = stub.state();
        let card = state.cards.iter_mut().find(|card| card["name"] == question.title.as_str()).unwrap();
        card["dataset_query"]["stages"][0]["native"] = json!("SELECT 1");
    }

    let provisioned = run(&stub, ADMIN_PASSWORD, &questions).unwrap();

    assert_eq!((provisioned.cards.updated, provisioned.cards.unchanged), (1, 7));
    assert_eq!(stage(&card_of(&stub, &question))["native"], question.sql.as_str());
}

#[test]
fn cards_carry_the_presentation_of_their_headers() {
    let stub = Stub::start(0);
    run(&stub, ADMIN_PASSWORD, &repository_questions()).unwrap();
    let questions = metabase_questions();
    let settings = |key: &str| {
        let question = questions.iter().find(|question| question.key == key).unwrap();
        card_of(&stub, question)["visualization_settings"].clone()
    };

    let trend = settings("01_total_sales_trend");
    assert_eq!(trend["scalar.field"], "sales");
    assert_eq!(trend["scalar.comparisons"][0]["type"], "previousValue");
    assert_eq!(trend["column_settings"]["[\"name\",\"sales\"]"]["decimals"], 2);
    assert_eq!(settings("02_average_basket_trend")["scalar.field"], "average_basket");
    let ratio = settings("04_one_time_vs_recurring_sales");
    assert_eq!(ratio["scalar.field"], "ratio");
    assert_eq!(ratio["column_settings"]["[\"name\",\"ratio\"]"]["decimals"], 2);
    let weekly = settings("05_weekly_basket_by_customer_type");
    assert_eq!(weekly["graph.dimensions"], json!(["week", "customer_type"]));
    assert_eq!(weekly["graph.metrics"], json!(["average_basket"]));
    assert_eq!(weekly["graph.x_axis.title_text"], "Week (Monday to Sunday)", "the report's words");
    assert_eq!(weekly["graph.y_axis.title_text"], "Average basket (shop currency)");
    assert_eq!(weekly["column_settings"]["[\"name\",\"average_basket\"]"]["column_title"], "Average basket");
    let sales = settings("07_weekly_sales_and_orders");
    assert_eq!(sales["graph.metrics"], json!(["sales", "orders"]));
    assert_eq!(sales["column_settings"]["[\"name\",\"sales\"]"]["number_style"], "decimal");
    let quality = settings("08_data_quality");
    assert_eq!(
        quality["column_settings"]["[\"name\",\"records\"]"],
        json!({ "column_title": "Records", "number_style": "decimal", "decimals": 0 })
    );
    let displays: BTreeMap<String, String> = stub
        .state()
        .cards
        .iter()
        .map(|card| (card["name"].as_str().unwrap().to_string(), card["display"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(displays["Total sales, last complete month"], "smartscalar");
    assert_eq!(displays["Average basket, last complete month"], "smartscalar");
}

#[test]
fn requests_match_the_openapi_extract() {
    let extract: Value = serde_json::from_str(include_str!("openapi_extract.json")).expect("the extract is JSON");
    let stub = Stub::start(1);
    let folder = copied_questions();
    run(&stub, ADMIN_PASSWORD, &load_questions(folder.path()).unwrap()).unwrap();
    edit(folder.path(), "07_weekly_sales_and_orders.sql", "ORDER BY week;", "ORDER BY week DESC;");
    run(&stub, ADMIN_PASSWORD, &load_questions(folder.path()).unwrap()).unwrap();
    // An analyst's card and text on the dashboard, a new question, and a run with an API key.
    add_analyst_dashcards(&stub);
    add_question(folder.path());
    stub.state().api_keys.insert(API_KEY.into());
    provision(&api_key_args(&stub, API_KEY), &load_questions(folder.path()).unwrap()).unwrap();
    stub.assert_no_violations();

    let mut problems = Vec::new();
    let mut used = HashSet::new();
    for request in stub.requests() {
        let (path, query) = request.path.split_once('?').unwrap_or((&request.path, ""));
        let Some((name, endpoint)) = openapi::endpoint(&extract, &request.method, path) else {
            problems.push(format!("{} {path}: not in the extract", request.method));
            continue;
        };
        used.insert(name.clone());
        problems.extend(openapi::query_problems(&name, endpoint, query));
        if let Some(body) = &request.body {
            openapi::body_problems(&extract, &name, &endpoint["body"], body, "", &mut problems);
        }
    }
    let listed: HashSet<String> = extract["endpoints"].as_object().unwrap().keys().cloned().collect();
    let unused: Vec<&String> = listed.difference(&used).collect();
    assert!(unused.is_empty(), "the extract lists endpoints provisioning never calls: {unused:?}");
    problems.sort();
    problems.dedup();
    assert!(problems.is_empty(), "requests off Metabase's OpenAPI document: {problems:#?}");
}

/// Checking recorded requests against `openapi_extract.json`.
mod openapi {
    use serde_json::Value;

    /// The extract's endpoint (`"METHOD /path/{param}"`) a request falls under.
    pub(crate) fn endpoint<'a>(extract: &'a Value, method: &str, path: &str) -> Option<(String, &'a Value)> {
        let segments = |path: &str| path.trim_end_matches('/').split('/').map(str::to_string).collect::<Vec<_>>();
        let wanted = segments(path);
        extract["endpoints"].as_object()?.iter().find_map(|(name, endpoint)| {
            let (listed_method, template) = name.split_once(' ')?;
            let template = segments(template);
            let fits = listed_method == method
                && template.len() == wanted.len()
                && template.iter().zip(&wanted).all(|(part, actual)| part.starts_with('{') || part == actual);
            fits.then(|| (name.clone(), endpoint))
        })
    }

    /// Query parameters the endpoint does not document, or values off its enum.
    pub(crate) fn query_problems(name: &str, endpoint: &Value, query: &str) -> Vec<String> {
        query
            .split('&')
            .filter(|pair| !pair.is_empty())
            .filter_map(|pair| {
                let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                match endpoint["query"].get(key) {
                    None => Some(format!("{name}: query parameter {key} is not documented")),
                    Some(Value::Array(allowed)) if !allowed.iter().any(|item| item == value) => {
                        Some(format!("{name}: {key}={value} is not one of {allowed:?}"))
                    }
                    Some(_) => None,
                }
            })
            .collect()
    }

    /// Keys sent that the schema does not list (unless the extract says why
    /// they are sent all the same), and required keys missing.
    pub(crate) fn body_problems(
        extract: &Value,
        name: &str,
        schema: &Value,
        sent: &Value,
        at: &str,
        problems: &mut Vec<String>,
    ) {
        if let Some(items) = schema.get("items") {
            for item in sent.as_array().into_iter().flatten() {
                body_problems(extract, name, items, item, &format!("{at}[]"), problems);
            }
        }
        let Some(properties) = schema.get("properties").and_then(Value::as_object) else { return };
        let Some(fields) = sent.as_object() else {
            problems.push(format!("{name}: {at} must be an object"));
            return;
        };
        for (key, value) in fields {
            let path = if at.is_empty() { key.clone() } else { format!("{at}.{key}") };
            match properties.get(key) {
                Some(child) => body_problems(extract, name, child, value, &path, problems),
                None if extract["sent_though_undocumented"].get(format!("{name} {path}")).is_some() => {}
                None => problems.push(format!("{name}: {path} is not a documented property")),
            }
        }
        let defaulted = |key: &str| schema["defaults"].as_array().is_some_and(|keys| keys.iter().any(|k| k == key));
        for required in schema["required"].as_array().into_iter().flatten().filter_map(Value::as_str) {
            if !fields.contains_key(required) && !defaulted(required) {
                problems.push(format!("{name}: required {at}.{required} is missing"));
            }
        }
    }
}

#[test]
fn wrong_password_is_a_clear_error_without_the_password() {
    let stub = Stub::start(0);
    let questions = repository_questions();
    run(&stub, ADMIN_PASSWORD, &questions).unwrap();
    let counts = stub.counts();
    let wrong = "wrong-Pa55-word-0d4e";

    let error = run(&stub, wrong, &questions).unwrap_err();

    assert!(matches!(error, MetabaseError::Credentials { status: 401, .. }), "{error:?}");
    assert!(!error.is_transient());
    assert_eq!(error.exit_code(), EXIT_CREDENTIALS, "an exit code of its own: retrying cannot help");
    let shown = format!("{error} / {error:?}");
    assert!(
        shown.contains("refused the admin email and password")
            && shown.contains("401")
            && shown.contains("/api/session"),
        "{shown}"
    );
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

    assert!(logged.lines().count() >= 5, "the run logs (so the check below means something): {logged}");
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

// ---------------------------------------------------------------------------
// Reaching Metabase: the address, waiting, credentials
// ---------------------------------------------------------------------------

/// Arguments with an API key and no admin password.
fn api_key_args(stub: &Stub, key: &str) -> MetabaseArgs {
    let argv = ["provision", "--metabase-url", &stub.url, "--warehouse-password", WAREHOUSE_PASSWORD, "--api-key", key];
    let args = Cli::try_parse_from(argv).unwrap().metabase;
    assert!(args.admin_password.is_none() || std::env::var_os("ORDERSTREAM_METABASE_ADMIN_PASSWORD").is_some());
    args
}

/// Arguments for `url` with `--wait-secs` (the old name, bare seconds) of `wait`.
fn args_for(url: &str, wait: &str) -> MetabaseArgs {
    let argv = [
        "provision",
        "--metabase-url",
        url,
        "--admin-password",
        ADMIN_PASSWORD,
        "--warehouse-password",
        WAREHOUSE_PASSWORD,
        "--wait-secs",
        wait,
    ];
    Cli::try_parse_from(argv).unwrap().metabase
}

#[test]
fn the_default_address_is_where_compose_publishes_metabase() {
    let compose =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../compose/docker-compose.yml"))
            .unwrap();
    let published = compose
        .lines()
        .find_map(|line| line.trim().strip_prefix("- 127.0.0.1:${METABASE_HOST_PORT:-")?.strip_suffix("}:3000"))
        .expect("compose publishes Metabase's port 3000 on METABASE_HOST_PORT");
    assert_eq!(DEFAULT_METABASE_URL, format!("http://127.0.0.1:{published}"));
    if std::env::var_os("ORDERSTREAM_METABASE_URL").is_none() {
        let args = Cli::try_parse_from(["provision"]).unwrap().metabase;
        assert_eq!(args.metabase_url, DEFAULT_METABASE_URL);
    }
}

#[test]
fn grafana_at_the_address_is_refused_at_once() {
    let stub = Stub::start(0);
    // Grafana's own answer to GET /api/health.
    stub.state().health =
        Some((axum::http::StatusCode::OK, json!({ "commit": "03f502a94d", "database": "ok", "version": "11.2.0" })));
    let started = std::time::Instant::now();

    let error = provision(&args_for(&stub.url, "300"), &repository_questions()).unwrap_err();

    assert!(started.elapsed() < std::time::Duration::from_secs(5), "no waiting: {:?}", started.elapsed());
    assert!(matches!(error, MetabaseError::NotMetabase { status: 200, .. }), "{error:?}");
    assert_eq!(error.exit_code(), EXIT_NO_METABASE);
    let shown = error.to_string();
    assert!(shown.contains("is not Metabase") && shown.contains("Grafana") && shown.contains("3030"), "{shown}");
    assert_eq!(stub.requests().len(), 1, "nothing but the health check was sent");
}

#[test]
fn nothing_at_the_address_fails_when_the_wait_is_over() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let started = std::time::Instant::now();

    let error = provision(&args_for(&url, "1"), &repository_questions()).unwrap_err();

    assert!(started.elapsed() < std::time::Duration::from_secs(5), "{:?}", started.elapsed());
    assert!(matches!(error, MetabaseError::Unreachable { .. }), "{error:?}");
    assert_eq!(error.exit_code(), EXIT_NO_METABASE);
    assert!(error.to_string().contains("nothing answers at"), "{error}");
}

#[test]
fn waiting_for_a_starting_metabase_says_what_it_waits_for() {
    let stub = Stub::start(3);
    let logs = CapturedLogs::default();
    let subscriber = tracing_subscriber::fmt().with_writer(logs.clone()).with_ansi(false).finish();

    tracing::subscriber::with_default(subscriber, || provision(&args_for(&stub.url, "10"), &repository_questions()))
        .unwrap();

    let logged = logs.text();
    let waiting = logged.lines().find(|line| line.contains("Waiting for Metabase to finish starting.")).unwrap_or("");
    assert!(waiting.contains("progress=50 %") && waiting.contains("gives_up_after_secs=10"), "{logged}");
}

#[test]
fn an_api_key_replaces_the_admin_login() {
    let stub = Stub::start(0);
    let questions = repository_questions();
    run(&stub, ADMIN_PASSWORD, &questions).unwrap();
    stub.state().api_keys.insert(API_KEY.into());
    let first_requests = stub.requests().len();

    let provisioned = provision(&api_key_args(&stub, API_KEY), &questions).unwrap();

    stub.assert_no_violations();
    assert_eq!(provisioned.setup, SetupOutcome::ApiKey);
    assert_eq!(provisioned.cards.unchanged, 8);
    let second: Vec<Recorded> = stub.requests()[first_requests..].to_vec();
    assert!(!second.iter().any(|request| request.path == "/api/session"), "no login");
    let authenticated = second.iter().filter(|request| !request.path.starts_with("/api/health"));
    let authenticated = authenticated.filter(|request| request.path != "/api/session/properties");
    assert!(authenticated.clone().count() >= 5);
    assert!(authenticated.clone().all(|request| request.api_key.as_deref() == Some(API_KEY)));
    assert!(authenticated.clone().all(|request| request.session.is_none()));
}

#[test]
fn a_wrong_api_key_fails_before_anything_changes() {
    let stub = Stub::start(0);
    let questions = repository_questions();
    run(&stub, ADMIN_PASSWORD, &questions).unwrap();
    stub.state().api_keys.insert(API_KEY.into());
    let counts = stub.counts();
    let wrong = "mb_d3Jvbmcta2V5LWZyb20tdGVzdA";

    let logs = CapturedLogs::default();
    let subscriber = tracing_subscriber::fmt().with_writer(logs.clone()).with_ansi(false).finish();
    let error = tracing::subscriber::with_default(subscriber, || provision(&api_key_args(&stub, wrong), &questions))
        .unwrap_err();

    assert!(matches!(error, MetabaseError::Credentials { credentials: "API key", status: 401, .. }), "{error:?}");
    assert_eq!(error.exit_code(), EXIT_CREDENTIALS);
    assert_eq!(stub.counts(), counts, "nothing changed");
    let shown = format!("{error} / {error:?} / {}", logs.text());
    for secret in [wrong, API_KEY, WAREHOUSE_PASSWORD] {
        assert!(!shown.contains(secret), "a secret leaked: {shown}");
    }
}

#[test]
fn an_api_key_alone_cannot_claim_a_fresh_metabase() {
    let stub = Stub::start(0);

    let error = provision(&api_key_args(&stub, API_KEY), &repository_questions()).unwrap_err();

    assert!(matches!(error, MetabaseError::SetupNeedsPassword { .. }), "{error:?}");
    assert_eq!(error.exit_code(), EXIT_USAGE);
    assert!(!stub.requests().iter().any(|request| request.path.starts_with("/api/setup")));
}

#[test]
fn help_names_only_roles_that_schema_migration_4_creates() {
    let migration = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../schema/migrations/0004_least_privilege_roles.sql"),
    )
    .unwrap();
    let created = migration.split("ARRAY[").nth(1).and_then(|rest| rest.split(']').next()).unwrap();
    let help = <Cli as clap::CommandFactory>::command().render_long_help().to_string();
    let named: Vec<&str> = help
        .split(|c: char| !(c.is_ascii_lowercase() || c == '_'))
        .filter(|word| word.starts_with("orderstream_"))
        .collect();
    assert!(named.contains(&"orderstream_analyst"), "{help}");
    for role in named {
        assert!(created.contains(&format!("'{role}'")), "--help names {role}, which migration 4 does not create");
    }
}

// ---------------------------------------------------------------------------
// What others added to the dashboard
// ---------------------------------------------------------------------------

/// An analyst's own card, on the dashboard below ours with settings of its
/// own, and a text card: neither is provisioning's.
fn add_analyst_dashcards(stub: &Stub) {
    let mut state = stub.state();
    let database = state.databases[0]["id"].clone();
    let collection = state.collections[0]["id"].clone();
    let ours = state.cards[0]["id"].clone();
    state.cards.push(json!({
        "id": 900, "name": "Orders by region (mine)", "display": "bar", "archived": false,
        "collection_id": collection, "description": "An analyst's question.", "visualization_settings": {},
        "dataset_query": { "lib/type": "mbql/query", "database": database,
                           "stages": [{ "lib/type": "mbql.stage/native", "native": "SELECT 1", "template-tags": {} }] },
    }));
    let dashcards = state.dashboards[0]["dashcards"].as_array_mut().unwrap();
    dashcards.push(json!({
        "id": 901, "card_id": 900, "row": 40, "col": 0, "size_x": 12, "size_y": 6,
        "parameter_mappings": [], "visualization_settings": { "card.title": "Regions" },
        "series": [{ "id": ours, "name": "one of ours, as a second series" }],
    }));
    dashcards.push(json!({
        "id": 902, "card_id": null, "row": 40, "col": 12, "size_x": 12, "size_y": 2, "parameter_mappings": [],
        "visualization_settings": { "virtual_card": { "display": "text" }, "text": "Ask Sam about regions" },
    }));
}

/// A new question file in `folder`, so the dashboard's layout changes.
fn add_question(folder: &Path) {
    std::fs::write(
        folder.join("09_orders_per_day.sql"),
        "-- title: Orders per day\n-- display: line\n-- description: Orders per day.\n\
         SELECT completed_time::date AS day, count(*) AS orders FROM analysis_orders GROUP BY 1 ORDER BY 1;\n",
    )
    .unwrap();
}

#[test]
fn relaying_out_the_dashboard_keeps_what_an_analyst_added() {
    let stub = Stub::start(0);
    let folder = copied_questions();
    run(&stub, ADMIN_PASSWORD, &load_questions(folder.path()).unwrap()).unwrap();
    add_analyst_dashcards(&stub);
    add_question(folder.path());

    let provisioned = run(&stub, ADMIN_PASSWORD, &load_questions(folder.path()).unwrap()).unwrap();

    stub.assert_no_violations();
    assert_eq!((provisioned.cards.created, provisioned.dashboard.updated), (1, 1), "a new card, laid out");
    let dashboard = stub.state().dashboards[0].clone();
    let dashcards = dashboard["dashcards"].as_array().unwrap();
    assert_eq!(dashcards.len(), 9 + 2, "ours and the analyst's two");
    let mine = dashcards.iter().find(|dashcard| dashcard["id"] == 901).expect("the analyst's card stays");
    assert_eq!(mine["visualization_settings"]["card.title"], "Regions");
    assert_eq!((&mine["row"], &mine["col"]), (&json!(40), &json!(0)), "where the analyst put it");
    assert_eq!(mine["series"].as_array().unwrap().len(), 1, "its second series too");
    let text = dashcards.iter().find(|dashcard| dashcard["id"] == 902).expect("the text card stays");
    assert_eq!(text["visualization_settings"]["text"], "Ask Sam about regions");
}

#[test]
fn a_dashboard_with_an_analysts_cards_is_left_alone() {
    let stub = Stub::start(0);
    let questions = repository_questions();
    run(&stub, ADMIN_PASSWORD, &questions).unwrap();
    add_analyst_dashcards(&stub);
    let before = stub.state().dashboards[0].clone();

    let provisioned = run(&stub, ADMIN_PASSWORD, &questions).unwrap();

    assert_eq!(provisioned.dashboard.unchanged, 1, "{provisioned}");
    assert_eq!(stub.state().dashboards[0], before);
}

#[test]
fn a_retired_question_leaves_the_dashboard_and_nothing_else_does() {
    let stub = Stub::start(0);
    let folder = copied_questions();
    run(&stub, ADMIN_PASSWORD, &load_questions(folder.path()).unwrap()).unwrap();
    add_analyst_dashcards(&stub);
    std::fs::remove_file(folder.path().join("07_weekly_sales_and_orders.sql")).unwrap();

    run(&stub, ADMIN_PASSWORD, &load_questions(folder.path()).unwrap()).unwrap();

    stub.assert_no_violations();
    let dashcards = stub.state().dashboards[0]["dashcards"].as_array().unwrap().clone();
    assert_eq!(dashcards.len(), 7 + 2, "the retired question's card is gone, the analyst's two stay");
}
