import Synchronization

/// One socket's membership of one channel: where the channel's traffic is queued for it.
///
/// A subscription starts *held*: while its join is set up (reply, presence state, replay),
/// live traffic waits in order beside it, and `release` lets it through after what the setup
/// sent. Broadcasts reach a subscription at most once and in sequence order: one numbered at or
/// below the last it received is dropped (a replayed message also arriving live, or a message
/// fetched to fill a gap also notified).
final class Subscription: Sendable {
    /// Unique in the replica; the origin a broadcast it sends carries (for `self: false`).
    let id: String
    let channel: ChannelKey
    let joinRef: String?
    let serializer: PhoenixSerializer
    let selfBroadcast: Bool
    let outbox: Outbox
    /// The join's `postgres_changes` bindings (empty: no database changes).
    let bindings: [PostgresBinding]

    private enum Pending {
        case broadcast(seq: Int64, frame: String)
        case presence(frame: String)
        case change(frame: String)
    }

    private struct State {
        var held: [Pending]? = []
        var lastSeq: Int64 = 0
        var presenceEnabled: Bool
        var principal: RealtimePrincipal
    }

    private let state: Mutex<State>

    init(id: String, channel: ChannelKey, joinRef: String?, serializer: PhoenixSerializer, selfBroadcast: Bool, presence: Bool,
         principal: RealtimePrincipal, bindings: [PostgresBinding] = [], outbox: Outbox) {
        self.id = id
        self.channel = channel
        self.joinRef = joinRef
        self.serializer = serializer
        self.selfBroadcast = selfBroadcast
        self.outbox = outbox
        self.bindings = bindings
        state = Mutex(State(presenceEnabled: presence, principal: principal))
    }

    var presenceEnabled: Bool { state.withLock { $0.presenceEnabled } }

    /// Turns presence on (a `track` on a channel joined without it, as Supabase does).
    func enablePresence() { state.withLock { $0.presenceEnabled = true } }

    /// Whom the subscription acts for (a token refresh changes it); database changes are checked
    /// against it.
    var principal: RealtimePrincipal {
        get { state.withLock { $0.principal } }
        set { state.withLock { $0.principal = newValue } }
    }

    /// The last sequence number this subscription received.
    var lastSeq: Int64 { state.withLock { $0.lastSeq } }

    /// A broadcast numbered `seq`, framed for this subscription's serializer.
    func deliver(seq: Int64, frame: String) {
        state.withLock { state in
            if state.held != nil {
                state.held!.append(.broadcast(seq: seq, frame: frame))
                if state.held!.count > outbox.maxFrames { outbox.overflow() }
                return
            }
            guard seq > state.lastSeq else { return }
            state.lastSeq = seq
            outbox.send(frame)
        }
    }

    /// A presence diff; only for subscriptions with presence on.
    func deliverPresence(frame: String) {
        state.withLock { state in
            guard state.presenceEnabled else { return }
            if state.held != nil {
                state.held!.append(.presence(frame: frame))
                return
            }
            outbox.send(frame)
        }
    }

    /// A database change event.
    func deliverChange(frame: String) {
        state.withLock { state in
            if state.held != nil {
                state.held!.append(.change(frame: frame))
                return
            }
            outbox.send(frame)
        }
    }

    /// Sends what the join set up (replayed messages, numbered up to `seq`), then lets live
    /// traffic through, starting with what was held.
    func release(sentUpTo seq: Int64?, replayed: [(seq: Int64, frame: String)] = []) {
        state.withLock { state in
            for message in replayed where message.seq > state.lastSeq {
                state.lastSeq = message.seq
                outbox.send(message.frame)
            }
            if let seq { state.lastSeq = max(state.lastSeq, seq) }
            let held = state.held ?? []
            state.held = nil
            for pending in held {
                switch pending {
                case .broadcast(let seq, let frame):
                    guard seq > state.lastSeq else { continue }
                    state.lastSeq = seq
                    outbox.send(frame)
                case .presence(let frame):
                    if state.presenceEnabled { outbox.send(frame) }
                case .change(let frame):
                    outbox.send(frame)
                }
            }
        }
    }
}
