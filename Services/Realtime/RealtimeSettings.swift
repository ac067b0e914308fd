import ServiceKit

/// Realtime's own settings (deploy/.env.example), read once at start.
struct RealtimeSettings: Sendable {
    /// How many of each channel's latest broadcasts are kept for replay.
    var replayMessages = 1_000
    /// How long a broadcast is kept for replay.
    var replaySeconds = 86_400
    /// How long every broadcast is kept, whatever the count: a replica that lags behind a busy
    /// channel can still read one too large for its notification.
    var replayMinimumSeconds = 30
    /// The largest broadcast or presence payload, in bytes of JSON.
    var maxPayloadBytes = 262_144
    /// A socket whose unwritten frames reach either bound is closed as a slow consumer.
    var queueFrames = 1_024
    var queueBytes = 1 << 20
    /// A socket that sends nothing (not even a heartbeat) for this long is closed.
    var idleTimeoutSeconds = 60
    /// A replica that has not beaten for this long is taken for dead: its presence is removed.
    var replicaTimeoutSeconds = 30

    init() {}

    init(_ configuration: ServiceConfiguration) throws {
        replayMessages = try configuration.integer("REALTIME_REPLAY_MESSAGES", default: replayMessages, range: 1...100_000)
        replaySeconds = try configuration.integer("REALTIME_REPLAY_SECONDS", default: replaySeconds, range: 1...2_592_000)
        replayMinimumSeconds = try configuration.integer("REALTIME_REPLAY_MIN_SECONDS", default: replayMinimumSeconds, range: 0...3_600)
        maxPayloadBytes = try configuration.integer("REALTIME_MAX_PAYLOAD_BYTES", default: maxPayloadBytes, range: 1_024...3_000_000)
        queueFrames = try configuration.integer("REALTIME_SOCKET_QUEUE_FRAMES", default: queueFrames, range: 1...1_000_000)
        queueBytes = try configuration.integer("REALTIME_SOCKET_QUEUE_BYTES", default: queueBytes, range: 65_536...1 << 30)
        idleTimeoutSeconds = try configuration.integer("REALTIME_IDLE_TIMEOUT_SECONDS", default: idleTimeoutSeconds, range: 1...3_600)
        replicaTimeoutSeconds = try configuration.integer("REALTIME_REPLICA_TIMEOUT_SECONDS", default: replicaTimeoutSeconds, range: 3...3_600)
    }

    /// The largest websocket frame accepted: a payload at its limit with its envelope.
    var maxFrameBytes: Int { maxPayloadBytes + 65_536 }
}
