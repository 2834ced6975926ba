//! Unit tests of `error`.
use super::*;

#[test]
fn maps_reply_codes() {
    let e: LapinError = LapinKind::ProtocolError(AMQPError::new(
        AMQPSoftError::ACCESSREFUSED.into(),
        "ACCESS_REFUSED - nope".into(),
    ))
    .into();
    let t = from_lapin(&e, "consume q");
    assert_eq!(t.kind, TransportErrorKind::AccessRefused);
    assert!(t.message.contains("403"), "{}", t.message);
    assert!(t.message.contains("nope"));
    assert_eq!(amqp_reply(&e).map(|r| r.0), Some(403));
    // A broker shutting down (stop_app) closes connections with 320: retriable.
    let e: LapinError = LapinKind::ProtocolError(AMQPError::new(
        AMQPHardError::CONNECTIONFORCED.into(),
        "CONNECTION_FORCED - broker forced connection closure".into(),
    ))
    .into();
    let t = from_lapin(&e, "publish");
    assert_eq!(t.kind, TransportErrorKind::Unavailable);
    assert!(t.is_retriable());
    let e: LapinError = LapinKind::MissingHeartbeatError.into();
    assert_eq!(from_lapin(&e, "x").kind, TransportErrorKind::Unavailable);
}
