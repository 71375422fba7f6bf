//! Every bound of the admin API, named in one place.

use std::time::Duration;

/// Largest request body accepted, in octets (a suppression import of
/// [`MAX_SUPPRESSIONS_PER_REQUEST`] entries fits).
pub(crate) const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;
/// Requests handled at once per listener; more wait for a slot.
pub(crate) const MAX_CONCURRENT_REQUESTS: usize = 16;
/// Longest value of a filter or scope criterion (a domain, provider, source, tenant or
/// campaign name).
pub(crate) const MAX_NAME_LEN: usize = 255;
/// Longest suspension reason or suppression reason.
pub(crate) const MAX_REASON_LEN: usize = 500;
/// Longest suspension.
pub(crate) const MAX_SUSPENSION: Duration = Duration::from_secs(30 * 86_400);
/// Longest message or suspension id in a path.
pub(crate) const MAX_ID_LEN: usize = 64;
/// Longest suppressed address (RFC 5321 path limit).
pub(crate) const MAX_ADDRESS_LEN: usize = 256;
/// Suppressions added by one request.
pub(crate) const MAX_SUPPRESSIONS_PER_REQUEST: usize = 10_000;
/// Suppressions listed by one request, and the default page size.
pub(crate) const MAX_SUPPRESSIONS_PAGE: usize = 10_000;
/// Default page size of `GET /v1/suppressions`.
pub(crate) const DEFAULT_SUPPRESSIONS_PAGE: usize = 100;
/// Most rows per table of the queue summary (`top`), and the default.
pub(crate) const MAX_QUEUE_ROWS: usize = 1000;
/// Default rows per table of the queue summary.
pub(crate) const DEFAULT_QUEUE_ROWS: usize = 25;
/// Shortest bearer token.
pub(crate) const MIN_TOKEN_LEN: usize = 16;
/// Longest bearer token.
pub(crate) const MAX_TOKEN_LEN: usize = 256;
/// How often the metrics recorder drains histogram samples when nobody scrapes.
pub(crate) const METRICS_UPKEEP: Duration = Duration::from_secs(5);
