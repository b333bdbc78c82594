//! The stub of Metabase's REST API, as the version compose pins (v0.64)
//! answers: its state, the routes provisioning calls, and the documented
//! shape of every request body, checked.
//!
//! It keeps state (setup done, sessions, databases, collections, cards,
//! dashboards with dashcards, API keys), records every request, and rejects
//! any request that does not have the documented shape: a missing or
//! mistyped field is a 400 and a recorded violation, a missing session or an
//! unknown API key a 401, a reused setup token a 403. Like Metabase, a
//! dashboard `PUT` deletes the dashcards it does not list and updates only
//! the keys each listed one carries. Like Metabase 0.57 and later, it stores a card's query as MBQL
//! 5 and answers with that shape, not the legacy one it was sent.
//! `openapi_extract.json` beside it is what the requests are checked against.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::IntoResponse;
use serde_json::{json, Value};

/// The token the stub hands out before setup, which setup must present once.
pub(crate) const SETUP_TOKEN: &str = "2f9b3c6e-setup-token-from-the-stub";
/// Metabase's obfuscated password in `GET /api/database` answers.
const OBFUSCATED: &str = "**MetabasePass**";

/// One request as the stub saw it.
#[derive(Debug, Clone)]
pub(crate) struct Recorded {
    pub(crate) method: String,
    /// Path with its query string.
    pub(crate) path: String,
    pub(crate) body: Option<Value>,
    pub(crate) session: Option<String>,
    /// The `x-api-key` header, if sent.
    pub(crate) api_key: Option<String>,
}

/// Metabase's state as far as provisioning touches it.
#[derive(Default)]
pub(crate) struct MetabaseState {
    /// Health checks still to answer 503, as Metabase does while it migrates.
    unhealthy_polls: usize,
    /// What `GET /api/health` answers instead, when set: another server at the URL.
    pub(crate) health: Option<(StatusCode, Value)>,
    /// The API keys an admin created.
    pub(crate) api_keys: HashSet<String>,
    /// The admin created by setup: (email, password).
    admin: Option<(String, String)>,
    setup_token_used: bool,
    sessions: HashSet<String>,
    next_id: i64,
    pub(crate) databases: Vec<Value>,
    pub(crate) collections: Vec<Value>,
    pub(crate) cards: Vec<Value>,
    pub(crate) dashboards: Vec<Value>,
    requests: Vec<Recorded>,
    /// Every request refused for its shape, with why.
    violations: Vec<String>,
}

type Shared = Arc<Mutex<MetabaseState>>;
type Answer = (StatusCode, Value);

/// The stub server, on its own runtime thread; stops when dropped.
pub(crate) struct Stub {
    pub(crate) url: String,
    state: Shared,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Stub {
    pub(crate) fn start(unhealthy_polls: usize) -> Stub {
        let state: Shared = Arc::new(Mutex::new(MetabaseState { unhealthy_polls, next_id: 1, ..Default::default() }));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let address: SocketAddr = listener.local_addr().unwrap();
        let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
        let app = axum::Router::new().fallback(handle).with_state(state.clone());
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        stopped.await.ok();
                    })
                    .await
                    .unwrap();
            });
        });
        Stub { url: format!("http://{address}"), state, shutdown: Some(shutdown), thread: Some(thread) }
    }

    pub(crate) fn state(&self) -> std::sync::MutexGuard<'_, MetabaseState> {
        self.state.lock().unwrap()
    }

    pub(crate) fn requests(&self) -> Vec<Recorded> {
        self.state().requests.clone()
    }

    /// Counts of (databases, collections, cards, dashboards, dashcards).
    pub(crate) fn counts(&self) -> (usize, usize, usize, usize, usize) {
        let state = self.state();
        let dashcards = state.dashboards.iter().map(|dashboard| dashboard["dashcards"].as_array().unwrap().len()).sum();
        (state.databases.len(), state.collections.len(), state.cards.len(), state.dashboards.len(), dashcards)
    }

    pub(crate) fn assert_no_violations(&self) {
        let violations = self.state().violations.clone();
        assert!(violations.is_empty(), "requests off the documented shapes: {violations:#?}");
    }
}

impl Drop for Stub {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            shutdown.send(()).ok();
        }
        if let Some(thread) = self.thread.take() {
            thread.join().ok();
        }
    }
}

async fn handle(
    State(state): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    let session = headers.get("x-metabase-session").and_then(|value| value.to_str().ok()).map(str::to_string);
    let api_key = headers.get("x-api-key").and_then(|value| value.to_str().ok()).map(str::to_string);
    let path = uri.path_and_query().map(|p| p.as_str().to_string()).unwrap_or_default();
    let mut state = state.lock().unwrap();
    let parsed_body = if body.is_empty() { None } else { serde_json::from_slice::<Value>(&body).ok() };
    state.requests.push(Recorded {
        method: method.to_string(),
        path: path.clone(),
        body: parsed_body.clone(),
        session: session.clone(),
        api_key: api_key.clone(),
    });
    let (status, answer) = if !body.is_empty() && parsed_body.is_none() {
        refuse(&mut state, &method, &path, "body is not JSON".into())
    } else {
        let authenticated = session.is_some_and(|session| state.sessions.contains(&session))
            || api_key.is_some_and(|key| state.api_keys.contains(&key));
        route(&mut state, &method, uri.path(), uri.query().unwrap_or(""), parsed_body.as_ref(), authenticated)
    };
    (status, [(header::CONTENT_TYPE, "application/json")], answer.to_string())
}

fn refuse(state: &mut MetabaseState, method: &Method, path: &str, why: String) -> Answer {
    state.violations.push(format!("{method} {path}: {why}"));
    (StatusCode::BAD_REQUEST, json!({ "errors": { "request": why } }))
}

fn route(
    state: &mut MetabaseState,
    method: &Method,
    path: &str,
    query: &str,
    body: Option<&Value>,
    authenticated: bool,
) -> Answer {
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').skip(2).collect();
    let null = Value::Null;
    let body = body.unwrap_or(&null);
    // Public endpoints.
    match (method.as_str(), segments.as_slice()) {
        ("GET", ["health"]) => return health(state),
        ("GET", ["session", "properties"]) => return properties(state),
        ("POST", ["setup"]) => return setup(state, body),
        ("POST", ["session"]) => return login(state, body),
        _ => {}
    }
    if !authenticated {
        return (StatusCode::UNAUTHORIZED, json!("Unauthenticated"));
    }
    let id = |segment: &str| segment.parse::<i64>().ok();
    let result = match (method.as_str(), segments.as_slice()) {
        ("GET", ["database"]) => Ok(database_list(state)),
        ("POST", ["database"]) => create_database(state, body),
        ("PUT", ["database", db]) => update_database(state, id(db), body),
        ("GET", ["collection"]) => Ok(collection_list(state)),
        ("POST", ["collection"]) => create_collection(state, body),
        ("GET", ["collection", collection, "items"]) => collection_items(state, id(collection), query),
        ("GET", ["card"]) => Ok(Value::Array(state.cards.clone())),
        ("POST", ["card"]) => create_card(state, body),
        ("PUT", ["card", card]) => update_card(state, id(card), body),
        ("POST", ["dashboard"]) => create_dashboard(state, body),
        ("GET", ["dashboard", dashboard]) => get_dashboard(state, id(dashboard)),
        ("PUT", ["dashboard", dashboard]) => update_dashboard(state, id(dashboard), body),
        _ => Err((StatusCode::NOT_FOUND, "no such endpoint in the stub".to_string())),
    };
    match result {
        Ok(answer) => (StatusCode::OK, answer),
        Err((StatusCode::BAD_REQUEST, why)) => refuse(state, method, path, why),
        Err((status, why)) => {
            state.violations.push(format!("{method} {path}: {status} {why}"));
            (status, json!({ "message": why }))
        }
    }
}

type Outcome = Result<Value, (StatusCode, String)>;

fn bad(why: impl Into<String>) -> (StatusCode, String) {
    (StatusCode::BAD_REQUEST, why.into())
}

fn not_found(what: &str) -> (StatusCode, String) {
    (StatusCode::NOT_FOUND, format!("{what} not found"))
}

fn next_id(state: &mut MetabaseState) -> i64 {
    state.next_id += 1;
    state.next_id
}

// --- shape checks -----------------------------------------------------------

fn non_blank<'a>(value: &'a Value, field: &str) -> Result<&'a str, (StatusCode, String)> {
    match value[field].as_str() {
        Some(text) if !text.trim().is_empty() => Ok(text),
        _ => Err(bad(format!("`{field}` must be a non-blank string, got {}", value[field]))),
    }
}

fn integer(value: &Value, field: &str) -> Result<i64, (StatusCode, String)> {
    value[field].as_i64().ok_or_else(|| bad(format!("`{field}` must be an integer, got {}", value[field])))
}

fn boolean(value: &Value, field: &str) -> Result<bool, (StatusCode, String)> {
    value[field].as_bool().ok_or_else(|| bad(format!("`{field}` must be a boolean, got {}", value[field])))
}

fn object<'a>(value: &'a Value, field: &str) -> Result<&'a serde_json::Map<String, Value>, (StatusCode, String)> {
    value[field].as_object().ok_or_else(|| bad(format!("`{field}` must be a map, got {}", value[field])))
}

fn array<'a>(value: &'a Value, field: &str) -> Result<&'a Vec<Value>, (StatusCode, String)> {
    value[field].as_array().ok_or_else(|| bad(format!("`{field}` must be an array, got {}", value[field])))
}

/// `collection_id`: null, or the id of an existing collection.
fn collection_reference(state: &MetabaseState, value: &Value) -> Result<Value, (StatusCode, String)> {
    match &value["collection_id"] {
        Value::Null => Ok(Value::Null),
        Value::Number(number)
            if state.collections.iter().any(|collection| collection["id"].as_i64() == number.as_i64()) =>
        {
            Ok(value["collection_id"].clone())
        }
        other => Err(bad(format!("`collection_id` must be null or an existing collection, got {other}"))),
    }
}

fn find_mut<'a>(items: &'a mut [Value], id: Option<i64>, what: &str) -> Result<&'a mut Value, (StatusCode, String)> {
    items.iter_mut().find(|item| item["id"].as_i64() == id && id.is_some()).ok_or_else(|| not_found(what))
}

// --- setup and sessions -----------------------------------------------------

fn health(state: &mut MetabaseState) -> Answer {
    if let Some(answer) = &state.health {
        return answer.clone();
    }
    if state.unhealthy_polls > 0 {
        state.unhealthy_polls -= 1;
        return (StatusCode::SERVICE_UNAVAILABLE, json!({ "status": "initializing", "progress": 0.5 }));
    }
    (StatusCode::OK, json!({ "status": "ok" }))
}

fn properties(state: &MetabaseState) -> Answer {
    // Like Metabase, the token stays listed after setup; only `has-user-setup` tells.
    (
        StatusCode::OK,
        json!({ "setup-token": SETUP_TOKEN, "has-user-setup": state.admin.is_some(), "version": { "tag": "v0.64.2.2" } }),
    )
}

fn setup(state: &mut MetabaseState, body: &Value) -> Answer {
    if state.admin.is_some() || state.setup_token_used {
        state.violations.push("POST /api/setup after setup".into());
        return (
            StatusCode::FORBIDDEN,
            json!("The /api/setup route can only be used to create the first user, however a user currently exists."),
        );
    }
    if body["token"] != SETUP_TOKEN {
        state.violations.push(format!("POST /api/setup with token {}", body["token"]));
        return (StatusCode::FORBIDDEN, json!({ "errors": { "token": "Token does not match the setup token." } }));
    }
    match check_setup(body) {
        Ok((email, password)) => {
            state.setup_token_used = true;
            state.admin = Some((email, password));
            (StatusCode::OK, json!({ "id": new_session(state) }))
        }
        Err((_, why)) => refuse(state, &Method::POST, "/api/setup", why),
    }
}

/// `POST /api/setup`: `user` needs `email` and `password` (names optional
/// but not blank), `prefs` needs `site_name` (`site_locale` optional).
fn check_setup(body: &Value) -> Result<(String, String), (StatusCode, String)> {
    let user = &body["user"];
    object(body, "user")?;
    for field in ["first_name", "last_name"] {
        if !user[field].is_null() {
            non_blank(user, field)?;
        }
    }
    let email = non_blank(user, "email")?;
    if !email.contains('@') {
        return Err(bad("`user.email` must be a valid email address"));
    }
    let password = non_blank(user, "password")?;
    let prefs = &body["prefs"];
    object(body, "prefs")?;
    non_blank(prefs, "site_name")?;
    if !prefs["site_locale"].is_null() {
        non_blank(prefs, "site_locale")?;
    }
    Ok((email.to_string(), password.to_string()))
}

fn login(state: &mut MetabaseState, body: &Value) -> Answer {
    let (Ok(username), Ok(password)) = (non_blank(body, "username"), non_blank(body, "password")) else {
        return refuse(
            state,
            &Method::POST,
            "/api/session",
            "`username` and `password` must be non-blank strings".into(),
        );
    };
    match &state.admin {
        Some((email, stored)) if email == username && stored == password => {
            (StatusCode::OK, json!({ "id": new_session(state) }))
        }
        _ => (StatusCode::UNAUTHORIZED, json!({ "errors": { "password": "did not match stored password" } })),
    }
}

fn new_session(state: &mut MetabaseState) -> String {
    let session = format!("session-{}", state.sessions.len() + 1);
    state.sessions.insert(session.clone());
    session
}

// --- databases --------------------------------------------------------------

fn database_list(state: &MetabaseState) -> Value {
    let data: Vec<Value> = state
        .databases
        .iter()
        .map(|database| {
            let mut shown = database.clone();
            shown["details"]["password"] = json!(OBFUSCATED);
            shown
        })
        .collect();
    json!({ "data": data, "total": data.len() })
}

fn check_database(body: &Value) -> Result<(), (StatusCode, String)> {
    if body["engine"] != "postgres" {
        return Err(bad(format!("`engine` must be a valid database engine (postgres here), got {}", body["engine"])));
    }
    non_blank(body, "name")?;
    let details = &body["details"];
    object(body, "details")?;
    for field in ["host", "dbname", "user", "password"] {
        non_blank(details, field)?;
    }
    integer(details, "port")?;
    boolean(details, "ssl")?;
    if details["password"] == OBFUSCATED {
        return Err(bad("`details.password` is the obfuscated placeholder sent back"));
    }
    if !body["is_full_sync"].is_null() {
        boolean(body, "is_full_sync")?;
    }
    Ok(())
}

fn create_database(state: &mut MetabaseState, body: &Value) -> Outcome {
    check_database(body)?;
    let mut database = body.clone();
    database["id"] = json!(next_id(state));
    state.databases.push(database.clone());
    Ok(database)
}

fn update_database(state: &mut MetabaseState, id: Option<i64>, body: &Value) -> Outcome {
    check_database(body)?;
    let database = find_mut(&mut state.databases, id, "database")?;
    for (key, value) in body.as_object().unwrap() {
        database[key] = value.clone();
    }
    Ok(database.clone())
}

// --- collections ------------------------------------------------------------

fn collection_list(state: &MetabaseState) -> Value {
    let mut list = vec![json!({ "id": "root", "name": "Our analytics", "can_write": true })];
    list.extend(state.collections.iter().cloned());
    Value::Array(list)
}

fn create_collection(state: &mut MetabaseState, body: &Value) -> Outcome {
    let name = non_blank(body, "name")?.to_string();
    if !body["parent_id"].is_null() {
        integer(body, "parent_id")?;
    }
    let collection = json!({ "id": next_id(state), "name": name, "archived": false, "location": "/" });
    state.collections.push(collection.clone());
    Ok(collection)
}

fn collection_items(state: &MetabaseState, id: Option<i64>, query: &str) -> Outcome {
    if !state.collections.iter().any(|collection| collection["id"].as_i64() == id) {
        return Err(not_found("collection"));
    }
    let models: Vec<&str> = query.split('&').filter_map(|pair| pair.strip_prefix("models=")).collect();
    let mut items = Vec::new();
    if models.is_empty() || models.contains(&"dashboard") {
        items.extend(state.dashboards.iter().filter(|dashboard| dashboard["collection_id"].as_i64() == id).map(|dashboard| {
            json!({ "id": dashboard["id"], "name": dashboard["name"], "model": "dashboard", "description": dashboard["description"] })
        }));
    }
    if models.is_empty() || models.contains(&"card") {
        items.extend(
            state
                .cards
                .iter()
                .filter(|card| card["collection_id"].as_i64() == id)
                .map(|card| json!({ "id": card["id"], "name": card["name"], "model": "card" })),
        );
    }
    Ok(json!({ "data": items, "total": items.len(), "models": models }))
}

// --- cards ------------------------------------------------------------------

const DISPLAYS: [&str; 7] = ["scalar", "smartscalar", "line", "bar", "table", "area", "row"];

/// The documented card shape, for a native query: the tags declared must be
/// exactly the `{{tags}}` the SQL uses, or Metabase cannot run it.
fn check_card(state: &MetabaseState, body: &Value) -> Result<(), (StatusCode, String)> {
    non_blank(body, "name")?;
    let display = non_blank(body, "display")?;
    if !DISPLAYS.contains(&display) {
        return Err(bad(format!("`display` {display} is not a Metabase visualisation")));
    }
    object(body, "visualization_settings")?;
    if !(body["description"].is_null() || body["description"].is_string()) {
        return Err(bad("`description` must be null or a string"));
    }
    collection_reference(state, body)?;
    let query = &body["dataset_query"];
    object(body, "dataset_query")?;
    if query["type"] != "native" {
        return Err(bad("`dataset_query.type` must be native for SQL"));
    }
    let database = integer(query, "database")?;
    if !state.databases.iter().any(|db| db["id"] == database) {
        return Err(bad(format!("`dataset_query.database` {database} does not exist")));
    }
    let native = &query["native"];
    object(query, "native")?;
    let sql = non_blank(native, "query")?;
    check_template_tags(sql, &native["template-tags"])
}

fn check_template_tags(sql: &str, tags: &Value) -> Result<(), (StatusCode, String)> {
    let used: HashSet<String> = sql
        .split("{{")
        .skip(1)
        .filter_map(|rest| rest.split_once("}}"))
        .map(|(tag, _)| tag.trim().to_string())
        .collect();
    let declared = match tags {
        Value::Null => serde_json::Map::new(),
        Value::Object(tags) => tags.clone(),
        other => return Err(bad(format!("`template-tags` must be a map, got {other}"))),
    };
    for (name, tag) in &declared {
        non_blank(tag, "id")?;
        non_blank(tag, "display-name")?;
        if tag["name"] != name.as_str() {
            return Err(bad(format!("template tag {name} has name {}", tag["name"])));
        }
        if !["text", "number", "date", "dimension"].contains(&tag["type"].as_str().unwrap_or("")) {
            return Err(bad(format!("template tag {name} has type {}", tag["type"])));
        }
    }
    let declared: HashSet<String> = declared.keys().cloned().collect();
    if used != declared {
        return Err(bad(format!("the SQL uses tags {used:?} but {declared:?} are declared")));
    }
    Ok(())
}

fn create_card(state: &mut MetabaseState, body: &Value) -> Outcome {
    check_card(state, body)?;
    let mut card = body.clone();
    card["id"] = json!(next_id(state));
    card["archived"] = json!(false);
    card["created_at"] = json!("2026-01-01T00:00:00Z");
    card["dataset_query"] = as_mbql5(&body["dataset_query"]);
    state.cards.push(card.clone());
    Ok(card)
}

fn update_card(state: &mut MetabaseState, id: Option<i64>, body: &Value) -> Outcome {
    check_card(state, body)?;
    let card = find_mut(&mut state.cards, id, "card")?;
    for (key, value) in body.as_object().unwrap() {
        card[key] = value.clone();
    }
    card["dataset_query"] = as_mbql5(&body["dataset_query"]);
    Ok(card.clone())
}

/// A legacy native query as Metabase 0.57+ stores and returns it: MBQL 5,
/// one native stage holding the SQL and its template tags.
fn as_mbql5(legacy: &Value) -> Value {
    let native = &legacy["native"];
    json!({
        "lib/type": "mbql/query",
        "database": legacy["database"],
        "stages": [{
            "lib/type": "mbql.stage/native",
            "native": native["query"],
            "template-tags": native.get("template-tags").cloned().unwrap_or(json!({})),
        }],
    })
}

// --- dashboards -------------------------------------------------------------

fn create_dashboard(state: &mut MetabaseState, body: &Value) -> Outcome {
    let name = non_blank(body, "name")?.to_string();
    let collection_id = collection_reference(state, body)?;
    if !(body["description"].is_null() || body["description"].is_string()) {
        return Err(bad("`description` must be null or a string"));
    }
    if !body["parameters"].is_null() {
        check_parameters(array(body, "parameters")?)?;
    }
    let dashboard = json!({
        "id": next_id(state),
        "name": name,
        "collection_id": collection_id,
        "description": body["description"],
        "parameters": body.get("parameters").cloned().unwrap_or(json!([])),
        "dashcards": [],
        "archived": false,
    });
    state.dashboards.push(dashboard.clone());
    Ok(dashboard)
}

/// The dashboard as stored, each dashcard hydrated with its `card` as
/// Metabase answers.
fn get_dashboard(state: &MetabaseState, id: Option<i64>) -> Outcome {
    let mut dashboard = stored_dashboard(state, id)?;
    for dashcard in dashboard["dashcards"].as_array_mut().into_iter().flatten() {
        let card = state.cards.iter().find(|card| card["id"] == dashcard["card_id"] && !card["id"].is_null());
        dashcard["card"] = card.map_or(Value::Null, |card| {
            json!({ "id": card["id"], "name": card["name"], "description": card["description"], "display": card["display"] })
        });
    }
    Ok(dashboard)
}

fn stored_dashboard(state: &MetabaseState, id: Option<i64>) -> Outcome {
    state
        .dashboards
        .iter()
        .find(|dashboard| dashboard["id"].as_i64() == id)
        .cloned()
        .ok_or_else(|| not_found("dashboard"))
}

fn check_parameters(parameters: &[Value]) -> Result<(), (StatusCode, String)> {
    for parameter in parameters {
        for field in ["id", "name", "slug", "type"] {
            non_blank(parameter, field)?;
        }
    }
    Ok(())
}

/// `PUT /api/dashboard/:id` with `dashcards` (Metabase ≥ 0.47): the list is
/// the whole new set; negative ids are new dashcards, positive ones must
/// already be on this dashboard and get only the keys sent, and any left out
/// are deleted.
fn update_dashboard(state: &mut MetabaseState, id: Option<i64>, body: &Value) -> Outcome {
    let current = stored_dashboard(state, id)?;
    let parameters = match &body["parameters"] {
        Value::Null => current["parameters"].as_array().cloned().unwrap_or_default(),
        _ => array(body, "parameters")?.clone(),
    };
    check_parameters(&parameters)?;
    let dashcards = match &body["dashcards"] {
        Value::Null => current["dashcards"].as_array().cloned().unwrap_or_default(),
        _ => check_dashcards(state, &current, array(body, "dashcards")?, &parameters)?,
    };
    let before = current["dashcards"].as_array().cloned().unwrap_or_default();
    let dashcards: Vec<Value> = dashcards
        .into_iter()
        .map(|sent| {
            let stored = before.iter().find(|dashcard| dashcard["id"] == sent["id"]);
            let mut dashcard = match stored {
                Some(stored) => merged(stored, &sent),
                None => sent.clone(),
            };
            if dashcard["id"].as_i64().is_some_and(|id| id < 0) {
                dashcard["id"] = json!(next_id(state));
            }
            dashcard["dashboard_id"] = json!(id);
            dashcard
        })
        .collect();
    let dashboard = find_mut(&mut state.dashboards, id, "dashboard")?;
    dashboard["dashcards"] = Value::Array(dashcards);
    dashboard["parameters"] = Value::Array(parameters);
    for field in ["name", "description", "collection_id"] {
        if let Some(value) = body.get(field) {
            dashboard[field] = value.clone();
        }
    }
    Ok(dashboard.clone())
}

/// An existing dashcard after an update: the keys sent replace the stored ones.
fn merged(stored: &Value, sent: &Value) -> Value {
    let mut dashcard = stored.clone();
    for (key, value) in sent.as_object().into_iter().flatten() {
        dashcard[key] = value.clone();
    }
    dashcard
}

fn check_dashcards(
    state: &MetabaseState,
    current: &Value,
    dashcards: &[Value],
    parameters: &[Value],
) -> Result<Vec<Value>, (StatusCode, String)> {
    let existing: HashSet<i64> =
        current["dashcards"].as_array().unwrap().iter().filter_map(|dashcard| dashcard["id"].as_i64()).collect();
    let parameter_ids: HashSet<&str> = parameters.iter().filter_map(|parameter| parameter["id"].as_str()).collect();
    let mut seen = HashSet::new();
    for dashcard in dashcards {
        let id = integer(dashcard, "id")?;
        if !seen.insert(id) {
            return Err(bad(format!("dashcard id {id} appears twice")));
        }
        if id > 0 && !existing.contains(&id) {
            return Err(bad(format!("dashcard {id} is not on this dashboard (new dashcards take negative ids)")));
        }
        // A text or heading dashcard has no card; only an existing one can be sent back so.
        if dashcard["card_id"].is_null() && id > 0 {
            continue;
        }
        let card_id = integer(dashcard, "card_id")?;
        let card = state
            .cards
            .iter()
            .find(|card| card["id"] == card_id)
            .ok_or_else(|| bad(format!("card {card_id} does not exist")))?;
        let (row, col, size_x, size_y) = (
            integer(dashcard, "row")?,
            integer(dashcard, "col")?,
            integer(dashcard, "size_x")?,
            integer(dashcard, "size_y")?,
        );
        if row < 0 || col < 0 || size_x < 1 || size_y < 1 || col + size_x > 24 {
            return Err(bad(format!(
                "dashcard {id} at row {row} col {col} size {size_x}×{size_y} is off the 24-column grid"
            )));
        }
        if !dashcard["visualization_settings"].is_null() {
            object(dashcard, "visualization_settings")?;
        }
        for mapping in array(dashcard, "parameter_mappings")? {
            check_mapping(mapping, card, card_id, &parameter_ids)?;
        }
    }
    Ok(dashcards.to_vec())
}

fn check_mapping(
    mapping: &Value,
    card: &Value,
    card_id: i64,
    parameter_ids: &HashSet<&str>,
) -> Result<(), (StatusCode, String)> {
    let parameter_id = non_blank(mapping, "parameter_id")?;
    if !parameter_ids.contains(parameter_id) {
        return Err(bad(format!("mapping to unknown parameter {parameter_id}")));
    }
    if integer(mapping, "card_id")? != card_id {
        return Err(bad("a mapping's card_id must be its dashcard's card"));
    }
    let tag = match mapping["target"].as_array().map(Vec::as_slice) {
        Some([kind, target]) if kind == "variable" => match target.as_array().map(Vec::as_slice) {
            Some([template, Value::String(tag)]) if template == "template-tag" => tag.clone(),
            _ => {
                return Err(bad(format!(
                    "target {} is not [\"variable\", [\"template-tag\", name]]",
                    mapping["target"]
                )))
            }
        },
        _ => return Err(bad(format!("target {} is not [\"variable\", [\"template-tag\", name]]", mapping["target"]))),
    };
    if card["dataset_query"]["stages"][0]["template-tags"].get(&tag).is_none() {
        return Err(bad(format!("card {card_id} has no template tag {tag}")));
    }
    Ok(())
}
