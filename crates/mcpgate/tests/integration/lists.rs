//! Merged lists: federation across transports, prefix modes and collisions, the 64-character
//! name limit, allow/deny lists, upstream pagination and the gateway's own pagination.

use std::collections::BTreeSet;

use mcpgate_example_server::Options;
use serde_json::json;

use crate::common::*;

/// The example server's tools.
pub const BUILTINS: [&str; 12] = [
    "echo",
    "add",
    "current_time",
    "convert_to_markdown",
    "long_operation",
    "sample",
    "elicit",
    "list_roots",
    "log",
    "fail",
    "add_tool",
    "touch_resource",
];

fn prefixed(prefix: &str) -> BTreeSet<String> {
    BUILTINS.iter().map(|t| format!("{prefix}{t}")).collect()
}

fn set(v: Vec<String>) -> BTreeSet<String> {
    let n = v.len();
    let s: BTreeSet<String> = v.into_iter().collect();
    assert_eq!(s.len(), n, "a merged list has no duplicate names");
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tools_and_prompts_of_stdio_streamable_http_and_sse_targets_are_merged_with_prefixes() {
    let http = named_fixture("sh").await;
    let sse = named_fixture("ss").await;
    let gw = Gateway::start(&config(
        "",
        &[
            stdio_target("st", &[], ""),
            http_target("sh", &http.mcp_url(), ""),
            sse_target("ss", &sse.sse_url(), ""),
        ],
    ))
    .await;
    let c = gw.connect().await;

    let tools = c.list_all("tools/list", "tools").await;
    let mut expected = prefixed("st_");
    expected.extend(prefixed("sh_"));
    expected.extend(prefixed("ss_"));
    assert_eq!(set(names(&tools)), expected);
    // Items keep their definitions: only the name changes.
    let add = tools.iter().find(|t| t["name"] == "ss_add").unwrap();
    assert_eq!(add["inputSchema"]["required"], json!(["a", "b"]));
    assert_eq!(add["title"], "Add two numbers");

    // Each prefixed name routes to its own target.
    for (i, p) in ["st", "sh", "ss"].iter().enumerate() {
        let r = c.call(&format!("{p}_add"), json!({ "a": i, "b": 40 })).await;
        assert_eq!(r["structuredContent"]["sum"], json!(i + 40), "{p}: {r}");
    }
    assert_eq!(
        http.stats().tool_calls(),
        1,
        "sh_add reached the Streamable HTTP fixture once"
    );
    assert_eq!(sse.stats().tool_calls(), 1, "ss_add reached the SSE fixture once");

    let prompts = names(&c.list_all("prompts/list", "prompts").await);
    let expected: BTreeSet<String> = ["st", "sh", "ss"]
        .iter()
        .flat_map(|p| [format!("{p}_summarize"), format!("{p}_greeting")])
        .collect();
    assert_eq!(set(prompts), expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefix_always_prefixes_even_a_single_target_and_auto_does_not() {
    let fx = named_fixture("only").await;
    let always = Gateway::start(&config(
        "naming:\n  prefix: always",
        &[http_target("only", &fx.mcp_url(), "")],
    ))
    .await;
    let c = always.connect().await;
    assert_eq!(set(c.tool_names().await), prefixed("only_"));
    assert_eq!(c.call_text("only_echo", json!({ "message": "a" })).await, "a");

    let auto = Gateway::start(&config(
        "naming:\n  prefix: auto",
        &[http_target("only", &fx.mcp_url(), "")],
    ))
    .await;
    let c = auto.connect().await;
    assert_eq!(set(c.tool_names().await), prefixed(""));
    assert_eq!(c.call_text("echo", json!({ "message": "b" })).await, "b");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefix_auto_prefixes_with_two_targets_and_separator_is_configurable() {
    let a = named_fixture("a").await;
    let b = named_fixture("b").await;
    let gw = Gateway::start(&config(
        "naming:\n  separator: \"-\"\n  prefix: auto",
        &[http_target("a", &a.mcp_url(), ""), http_target("b", &b.mcp_url(), "")],
    ))
    .await;
    let c = gw.connect().await;
    let mut expected = prefixed("a-");
    expected.extend(prefixed("b-"));
    assert_eq!(set(c.tool_names().await), expected);
    assert_eq!(c.call_text("b-echo", json!({ "message": "x" })).await, "x");
    assert_eq!((a.stats().tool_calls(), b.stats().tool_calls()), (0, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefix_never_exposes_bare_names_and_the_first_target_wins_a_collision() {
    let first = named_fixture("first").await;
    let second = fixture(Options {
        name: "second".into(),
        extra_tools: 1,
        ..Default::default()
    })
    .await;
    let gw = Gateway::start(&config(
        "naming:\n  prefix: never",
        &[
            http_target("first", &first.mcp_url(), ""),
            http_target("second", &second.mcp_url(), ""),
        ],
    ))
    .await;
    let c = gw.connect().await;
    let mut expected = prefixed("");
    expected.insert("tool_0000".into());
    assert_eq!(
        set(c.tool_names().await),
        expected,
        "each colliding name once, unprefixed"
    );

    assert_eq!(c.call_text("echo", json!({ "message": "who" })).await, "who");
    assert_eq!(
        first.stats().tool_calls(),
        1,
        "the colliding name routes to the first target"
    );
    assert_eq!(second.stats().tool_calls(), 0);
    // A name only the second target has routes there.
    assert_eq!(c.call_text("tool_0000", json!({ "message": "2nd" })).await, "2nd");
    assert_eq!(second.stats().tool_calls(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_beyond_64_characters_or_with_other_characters_are_shortened_and_still_route() {
    let fx = named_fixture("t").await;
    let long = format!("a_very_long_tool_name_{}", "x".repeat(90));
    assert!(fx.server().add_tool(&long));
    assert!(fx.server().add_tool("get.user"));
    let gw = Gateway::start(&config(
        "naming:\n  prefix: always",
        &[http_target("t", &fx.mcp_url(), "")],
    ))
    .await;
    let c = gw.connect().await;
    let names = set(c.tool_names().await);
    assert_eq!(names.len(), BUILTINS.len() + 2);
    for n in &names {
        assert!(
            (1..=64).contains(&n.len()) && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'),
            "exposed name {n:?} breaks ^[a-zA-Z0-9_-]{{1,64}}$"
        );
    }
    let extra: Vec<&String> = names.iter().filter(|n| !prefixed("t_").contains(*n)).collect();
    assert_eq!(extra.len(), 2, "{names:?}");
    let shortened = extra
        .iter()
        .find(|n| n.starts_with("t_a_very_long"))
        .expect("the long tool is listed");
    let dotted = extra
        .iter()
        .find(|n| !n.starts_with("t_a_very_long"))
        .expect("the dotted tool is listed");
    // Both route to the upstream tool under its real name (dynamic tools echo `message`).
    assert_eq!(c.call_text(shortened, json!({ "message": "long" })).await, "long");
    assert_eq!(c.call_text(dotted, json!({ "message": "dot" })).await, "dot");
    assert_eq!(fx.stats().tool_calls(), 2);
    // The shortening is deterministic: a second gateway exposes the same names.
    let gw2 = Gateway::start(&config(
        "naming:\n  prefix: always",
        &[http_target("t", &fx.mcp_url(), "")],
    ))
    .await;
    assert_eq!(set(gw2.connect().await.tool_names().await), names);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allow_and_deny_lists_hide_tools_and_refuse_calls_to_them() {
    let fx = named_fixture("t").await;
    let gw = Gateway::start(&config(
        "naming:\n  prefix: always",
        &[http_target(
            "t",
            &fx.mcp_url(),
            "    tools:\n      allow: [\"echo\", \"add\", \"long_*\"]\n      deny: [\"long_operation\"]\n",
        )],
    ))
    .await;
    let c = gw.connect().await;
    assert_eq!(set(c.tool_names().await), ["t_add", "t_echo"].map(String::from).into());
    assert_eq!(c.call_text("t_echo", json!({ "message": "ok" })).await, "ok");

    for hidden in ["t_fail", "t_long_operation", "t_current_time"] {
        let e = c.error("tools/call", json!({ "name": hidden, "arguments": {} })).await;
        assert_eq!(e["code"], -32602, "{hidden}: {e}");
    }
    assert_eq!(fx.stats().tool_calls(), 1, "refused calls never reach the upstream");

    // A deny-only list hides just what it names.
    let gw = Gateway::start(&config(
        "naming:\n  prefix: always",
        &[http_target(
            "t",
            &fx.mcp_url(),
            "    tools:\n      deny: [\"*_tool\", \"fail\"]\n",
        )],
    ))
    .await;
    let mut expected = prefixed("t_");
    expected.remove("t_add_tool");
    expected.remove("t_fail");
    assert_eq!(set(gw.connect().await.tool_names().await), expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_pagination_is_followed_to_the_end() {
    let paged = fixture(Options {
        name: "paged".into(),
        page_size: Some(2),
        ..Default::default()
    })
    .await;
    let gw = Gateway::start(&config(
        "",
        &[
            http_target("paged", &paged.mcp_url(), ""),
            stdio_target("stdio", &["--page-size", "3"], ""),
        ],
    ))
    .await;
    let c = gw.connect().await;
    let tools = c.list_all("tools/list", "tools").await;
    let mut expected = prefixed("paged_");
    expected.extend(prefixed("stdio_"));
    assert_eq!(set(names(&tools)), expected);
    assert!(
        paged.stats().method("tools/list") >= 6,
        "12 tools in pages of 2 take 6 upstream requests, saw {}",
        paged.stats().method("tools/list")
    );
    // Resources (3, pages of 2 upstream) and templates are complete too.
    let resources = c.list_all("resources/list", "resources").await;
    let uris: BTreeSet<String> = resources
        .iter()
        .map(|r| r["uri"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        uris,
        ["example://readme", "example://logo.png", "example://counter"]
            .map(String::from)
            .into()
    );
    assert!(paged.stats().method("resources/list") >= 2);
    let prompts = c.list_all("prompts/list", "prompts").await;
    assert_eq!(prompts.len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_paginates_merged_lists_with_opaque_cursors() {
    let a = named_fixture("a").await;
    let gw = Gateway::start(&config(
        "listen:\n  page_size: 5",
        &[http_target("a", &a.mcp_url(), ""), stdio_target("b", &[], "")],
    ))
    .await;
    let c = gw.connect().await;

    let first = c.result("tools/list", json!({})).await;
    assert_eq!(first["tools"].as_array().unwrap().len(), 5);
    let cursor = first["nextCursor"].as_str().expect("a next cursor").to_owned();
    // The same cursor gives the same page.
    let again = c.result("tools/list", json!({ "cursor": cursor })).await;
    let again2 = c.result("tools/list", json!({ "cursor": cursor })).await;
    assert_eq!(again, again2);

    // Following every cursor yields the whole merged list exactly once.
    let mut pages = 0;
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let params = cursor.as_ref().map_or(json!({}), |c| json!({ "cursor": c }));
        let r = c.result("tools/list", params).await;
        let items = r["tools"].as_array().unwrap();
        assert!(items.len() <= 5);
        all.extend(names(items));
        pages += 1;
        match r["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, 5, "24 tools in pages of 5");
    let mut expected = prefixed("a_");
    expected.extend(prefixed("b_"));
    assert_eq!(set(all), expected);

    // Cursors that the gateway did not issue for this list are invalid params.
    for bad in [json!("not-a-cursor"), json!(""), json!(12)] {
        let e = c.error("tools/list", json!({ "cursor": bad })).await;
        assert_eq!(e["code"], -32602, "cursor {bad}: {e}");
    }
    let tools_cursor = first["nextCursor"].clone();
    let e = c.error("resources/list", json!({ "cursor": tools_cursor })).await;
    assert_eq!(e["code"], -32602, "a tools/list cursor on resources/list: {e}");
    // Still serving.
    assert_eq!(
        c.result("tools/list", json!({})).await["tools"]
            .as_array()
            .unwrap()
            .len(),
        5
    );
}
