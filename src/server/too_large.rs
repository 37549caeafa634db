//! A request over the gRPC message-size limit answers ResourceExhausted, as gRPC's own
//! implementations do, instead of tonic's OutOfRange (which CSI reserves for sizes a volume
//! cannot have, so a CO would read it as "this capacity is impossible").

use tonic::codegen::http::{self, HeaderValue};

/// How tonic's decoder starts the message of an oversize request.
const TOO_LARGE: &str = "Error, decoded message length too large";
/// gRPC status codes on the wire.
const OUT_OF_RANGE: &str = "11";
const RESOURCE_EXHAUSTED: &str = "8";

/// The response as sent, with an oversize-request refusal recoded as ResourceExhausted.
pub fn recode(mut response: http::Response<tonic::body::Body>) -> http::Response<tonic::body::Body> {
    let headers = response.headers_mut();
    let out_of_range = headers.get("grpc-status").is_some_and(|v| v == OUT_OF_RANGE);
    // grpc-message is percent-encoded on the wire.
    let too_large = headers
        .get("grpc-message")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|m| m.replace("%20", " ").starts_with(TOO_LARGE));
    if out_of_range && too_large {
        headers.insert("grpc-status", HeaderValue::from_static(RESOURCE_EXHAUSTED));
    }
    response
}

/// The server layer that applies [`recode`] to every response.
pub fn layer()
-> tower::util::MapResponseLayer<fn(http::Response<tonic::body::Body>) -> http::Response<tonic::body::Body>> {
    tower::util::MapResponseLayer::new(recode)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: &'static str, message: &'static str) -> http::Response<tonic::body::Body> {
        let mut r = http::Response::new(tonic::body::Body::empty());
        r.headers_mut().insert("grpc-status", HeaderValue::from_static(status));
        r.headers_mut().insert("grpc-message", HeaderValue::from_static(message));
        r
    }

    #[test]
    fn an_oversize_request_is_resource_exhausted() {
        let r = recode(response(
            "11",
            "Error,%20decoded%20message%20length%20too%20large:%20found%205000000%20bytes",
        ));
        assert_eq!(r.headers()["grpc-status"], "8");
    }

    #[test]
    fn the_drivers_own_out_of_range_is_kept() {
        let r = recode(response("11", "the%20volume%20must%20be%20at%20least%2010%20GiB"));
        assert_eq!(r.headers()["grpc-status"], "11");
    }
}
