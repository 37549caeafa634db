//! The `--endpoint` address: `unix:///absolute/path` or `tcp://host:port`.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// Where the gRPC server listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// A unix domain socket at an absolute path (what kubelet and the sidecars use).
    Unix(PathBuf),
    /// A TCP `host:port` (for debugging and remote tools).
    Tcp(String),
}

/// Why an endpoint string was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    /// Neither `unix://` nor `tcp://`.
    #[error("endpoint {0:?} must start with unix:// or tcp://")]
    Scheme(String),
    /// `unix://` with a relative or empty path.
    #[error("unix endpoint {0:?} must name an absolute path, e.g. unix:///csi/csi.sock")]
    RelativePath(String),
    /// `tcp://` without `host:port`.
    #[error("tcp endpoint {0:?} must be tcp://host:port")]
    HostPort(String),
}

impl FromStr for Endpoint {
    type Err = EndpointError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(path) = s.strip_prefix("unix://") {
            if !path.starts_with('/') || path.len() < 2 {
                return Err(EndpointError::RelativePath(s.to_string()));
            }
            Ok(Self::Unix(PathBuf::from(path)))
        } else if let Some(address) = s.strip_prefix("tcp://") {
            let valid = address
                .rsplit_once(':')
                .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
            if !valid {
                return Err(EndpointError::HostPort(s.to_string()));
            }
            Ok(Self::Tcp(address.to_string()))
        } else {
            Err(EndpointError::Scheme(s.to_string()))
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unix(path) => write!(f, "unix://{}", path.display()),
            Self::Tcp(address) => write!(f, "tcp://{address}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_unix_and_tcp_endpoints() {
        assert_eq!("unix:///csi/csi.sock".parse(), Ok(Endpoint::Unix("/csi/csi.sock".into())));
        assert_eq!("tcp://127.0.0.1:10000".parse(), Ok(Endpoint::Tcp("127.0.0.1:10000".into())));
        assert_eq!("tcp://[::1]:10000".parse(), Ok(Endpoint::Tcp("[::1]:10000".into())));
    }

    #[test]
    fn refuses_malformed_endpoints() {
        assert!(matches!("/csi/csi.sock".parse::<Endpoint>(), Err(EndpointError::Scheme(_))));
        assert!(matches!("unix://csi.sock".parse::<Endpoint>(), Err(EndpointError::RelativePath(_))));
        assert!(matches!("unix://".parse::<Endpoint>(), Err(EndpointError::RelativePath(_))));
        assert!(matches!("tcp://localhost".parse::<Endpoint>(), Err(EndpointError::HostPort(_))));
        assert!(matches!("tcp://:80".parse::<Endpoint>(), Err(EndpointError::HostPort(_))));
        assert!(matches!("tcp://h:99999".parse::<Endpoint>(), Err(EndpointError::HostPort(_))));
    }

    #[test]
    fn display_round_trips() {
        for s in ["unix:///csi/csi.sock", "tcp://0.0.0.0:9000"] {
            assert_eq!(s.parse::<Endpoint>().unwrap().to_string(), s);
        }
    }
}
