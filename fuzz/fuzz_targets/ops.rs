//! The operator endpoint's request handling under arbitrary requests: the
//! route table and the bearer check, fed an arbitrary method, path, query and
//! `Authorization` value (what `tiny_http` hands over from the network).
//!
//! Checks: no panic; `GET /open` always answers 200; `POST /control` answers
//! 200 only when a token is configured and the header is two words, `bearer`
//! in any case and then exactly the token, 403 when no token is configured
//! and 401 otherwise; another method on those paths 405; any other path 404.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tweetflow::{check_bearer, Access, Method, Request, Response, Routes};

const TOKEN: &str = "s3cret";

type Token = Option<&'static str>;

fn open(_: &Token, _: &Request<'_>) -> Response {
    Response::text(200, "open")
}

fn control(token: &Token, r: &Request<'_>) -> Response {
    match check_bearer(*token, r.authorization) {
        Access::Granted => Response::text(200, "ok"),
        Access::Disabled => Response::text(403, "off"),
        Access::Denied => Response::text(401, "no"),
    }
}

fuzz_target!(|input: &[u8]| {
    let text = String::from_utf8_lossy(input);
    let mut lines = text.splitn(3, '\n');
    let url = lines.next().unwrap_or("");
    let authorization = lines.next();
    let method = match lines.next() {
        Some(m) if m.starts_with('P') => Method::Post,
        _ => Method::Get,
    };
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    let routes = Routes::new().get("/open", open).post("/control", control);
    let words: Vec<&str> = authorization.map_or(Vec::new(), |a| a.split_ascii_whitespace().collect());
    let exact = words.len() == 2 && words[0].eq_ignore_ascii_case("bearer") && words[1] == TOKEN;
    for token in [Some(TOKEN), None] {
        let req = Request {
            method,
            path,
            query,
            authorization,
        };
        let status = routes.answer(&token, &req).status;
        match (method, path) {
            (Method::Get, "/open") => assert_eq!(status, 200),
            (Method::Post, "/control") => match token {
                None => assert_eq!(status, 403),
                Some(_) if exact => assert_eq!(status, 200, "{authorization:?}"),
                Some(_) => assert_eq!(status, 401, "{authorization:?}"),
            },
            (_, "/open" | "/control") => assert_eq!(status, 405),
            _ => assert_eq!(status, 404),
        }
    }
});
