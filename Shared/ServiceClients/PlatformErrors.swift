import Contracts
import HTTPClient

// The platform's error shape (`ErrorEnvelope`) read from what the HTTP kit returns. The kit is
// a transport and knows no server's error format; the callers that talk to the platform's
// services do, here.

extension HTTPClientResponse {
    /// The body decoded as the platform's `ErrorEnvelope`, or nil when it is not one.
    public var errorEnvelope: ErrorEnvelope? { ErrorEnvelope(body: self.body) }
}

extension HTTPClientError {
    /// For a status error, its body decoded as the platform's `ErrorEnvelope`; nil otherwise or
    /// when the body is not one.
    public var errorEnvelope: ErrorEnvelope? {
        guard case .status(_, let body) = self else { return nil }
        return ErrorEnvelope(body: body)
    }

    /// The description, with the envelope's code, message and field after a status error's
    /// status: `unexpected HTTP status 409: slug_taken: The slug is taken. (field: slug)`. Safe
    /// to log and to show: an envelope's message never carries internals.
    public var platformDescription: String {
        guard let envelope = self.errorEnvelope else { return self.description }
        var text = "\(self.description): \(envelope.error.code): \(envelope.error.message)"
        if let field = envelope.error.field { text += " (field: \(field))" }
        return text
    }
}
