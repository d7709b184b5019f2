//! The route table: a method and a path map to one plain function of the
//! shared state.
//!
//! Handlers are `fn(&S, &Request) -> Response`: no closures, no captured
//! state, so a route is one line in the table and its handler can be tested
//! by calling it. Matching is exact on the path (the query is handed to the
//! handler); an unknown path answers 404, a known path with another method
//! 405 with `Allow`. `HEAD` is routed as `GET` (the server leaves the body out).

use serde::Serialize;

/// The methods the endpoint routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `GET` (and `HEAD`).
    Get,
    /// `POST`.
    Post,
}

impl Method {
    fn name(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
        }
    }
}

/// A request as a handler sees it.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The method (`HEAD` arrives as [`Method::Get`]).
    pub method: Method,
    /// The path, without the query.
    pub path: &'a str,
    /// The query string without its `?`; empty when there is none.
    pub query: &'a str,
    /// The `Authorization` header, when one was sent.
    pub authorization: Option<&'a str>,
}

/// A complete response: status, content type, extra headers and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The HTTP status code.
    pub status: u16,
    /// The `Content-Type`.
    pub content_type: &'static str,
    /// Further headers.
    pub headers: Vec<(&'static str, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// A response with `body` of `content_type`.
    pub fn new(status: u16, content_type: &'static str, body: impl Into<Vec<u8>>) -> Response {
        Response {
            status,
            content_type,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    /// A UTF-8 plain-text response.
    pub fn text(status: u16, body: impl Into<String>) -> Response {
        Response::new(status, "text/plain; charset=utf-8", body.into())
    }

    /// A UTF-8 HTML page.
    pub fn html(status: u16, body: impl Into<Vec<u8>>) -> Response {
        Response::new(status, "text/html; charset=utf-8", body)
    }

    /// `value` as JSON (a value that cannot be serialised answers 500).
    pub fn json(status: u16, value: &impl Serialize) -> Response {
        match serde_json::to_vec(value) {
            Ok(mut body) => {
                body.push(b'\n');
                Response::new(status, "application/json", body)
            }
            Err(e) => Response::text(500, format!("cannot serialise the answer: {e}\n")),
        }
    }

    /// Adds a header.
    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Response {
        self.headers.push((name, value.into()));
        self
    }
}

/// A route's handler: a plain function of the shared state and the request.
pub(crate) type Handler<S> = fn(&S, &Request<'_>) -> Response;

/// The route table.
pub struct Routes<S> {
    routes: Vec<(Method, &'static str, Handler<S>)>,
}

impl<S> Default for Routes<S> {
    fn default() -> Self {
        Routes { routes: Vec::new() }
    }
}

impl<S> std::fmt::Debug for Routes<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(
                self.routes
                    .iter()
                    .map(|(m, p, _)| format!("{} {p}", m.name())),
            )
            .finish()
    }
}

impl<S> Routes<S> {
    /// An empty table (every request answers 404).
    pub fn new() -> Routes<S> {
        Routes::default()
    }

    /// Routes `GET path` (and `HEAD path`) to `handler`.
    pub fn get(self, path: &'static str, handler: Handler<S>) -> Routes<S> {
        self.route(Method::Get, path, handler)
    }

    /// Routes `POST path` to `handler`.
    pub fn post(self, path: &'static str, handler: Handler<S>) -> Routes<S> {
        self.route(Method::Post, path, handler)
    }

    fn route(mut self, method: Method, path: &'static str, handler: Handler<S>) -> Routes<S> {
        // A later registration of the same route replaces the earlier one.
        self.routes
            .retain(|(m, p, _)| !(*m == method && *p == path));
        self.routes.push((method, path, handler));
        self
    }

    /// The answer to `req`: its route's, or 404 / 405.
    pub fn answer(&self, state: &S, req: &Request<'_>) -> Response {
        let mut allowed: Vec<&str> = Vec::new();
        for (method, path, handler) in &self.routes {
            if *path != req.path {
                continue;
            }
            if *method == req.method {
                return handler(state, req);
            }
            allowed.push(method.name());
        }
        if allowed.is_empty() {
            return Response::text(404, format!("no route {}\n", req.path));
        }
        if allowed.contains(&"GET") {
            allowed.push("HEAD");
        }
        Response::text(405, "method not allowed\n").with_header("Allow", allowed.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hello(n: &u32, r: &Request<'_>) -> Response {
        Response::text(200, format!("{n} {}", r.query))
    }
    fn poke(_: &u32, _: &Request<'_>) -> Response {
        Response::text(204, "")
    }

    fn req(method: Method, path: &str) -> Request<'_> {
        Request {
            method,
            path,
            query: "a=1",
            authorization: None,
        }
    }

    #[test]
    fn routes_by_method_and_exact_path() {
        let routes = Routes::new().get("/hello", hello).post("/poke", poke);
        let r = routes.answer(&7, &req(Method::Get, "/hello"));
        assert_eq!((r.status, r.body), (200, b"7 a=1".to_vec()));
        assert_eq!(routes.answer(&7, &req(Method::Post, "/poke")).status, 204);
        assert_eq!(routes.answer(&7, &req(Method::Get, "/hello/")).status, 404);
        assert_eq!(routes.answer(&7, &req(Method::Get, "/")).status, 404);
        let r = routes.answer(&7, &req(Method::Get, "/poke"));
        assert_eq!(r.status, 405);
        assert_eq!(r.headers, vec![("Allow", "POST".to_string())]);
        let r = routes.answer(&7, &req(Method::Post, "/hello"));
        assert_eq!(r.headers, vec![("Allow", "GET, HEAD".to_string())]);
    }

    #[test]
    fn a_later_route_replaces_an_earlier_one() {
        let routes = Routes::new().get("/x", poke).get("/x", hello);
        assert_eq!(routes.answer(&1, &req(Method::Get, "/x")).status, 200);
        assert_eq!(format!("{routes:?}"), r#"["GET /x"]"#);
    }
}
