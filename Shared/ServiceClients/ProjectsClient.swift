import Contracts
import Foundation
import HTTPClient

/// Auth's call to provisioning when a developer registers: `POST /internal/v1/projects` with
/// an `Idempotency-Key` (so the kit may retry it after a transient failure,
/// `HTTPClientError.isTransient`, and a repeated call cannot create a second project).
public struct ProjectsClient: Sendable {
    public let provisioningURL: String
    private let http: CurlHTTPClient
    private let serviceToken: String

    public init(http: CurlHTTPClient, provisioningURL: String, serviceToken: String) {
        self.http = http
        self.provisioningURL = provisioningURL
        self.serviceToken = serviceToken
    }

    /// Provisioning accepted the project (202); `replayed` when it answered from an earlier call
    /// with the same key (`Idempotent-Replayed: true`).
    public struct Accepted: Sendable, Equatable {
        public var project: ProjectAccepted
        public var replayed: Bool
    }

    /// Why a project was not accepted.
    public enum Failure: Error, Sendable, Equatable {
        /// 409: the slug is taken (`slug_taken`), or a call with the same key is still running.
        case conflict(ErrorEnvelope?)
        /// 422: the project was refused (a field is invalid, or the key was used for another request).
        case refused(ErrorEnvelope?)
        /// Anything else: provisioning unreachable, timed out, failing, or answering nonsense.
        case unavailable(HTTPClientError)
    }

    /// `POST /internal/v1/projects`. Throws `Failure`, or `CancellationError`.
    public func create(_ project: CreateProjectRequest, idempotencyKey: String) async throws -> Accepted {
        let headers = InternalCall.headers(token: serviceToken, (PlatformHeader.idempotencyKey, idempotencyKey))
        do {
            let response = try await http.send(.post, provisioningURL + "/internal/v1/projects", body: project, headers: headers)
            return Accepted(
                project: try response.decode(ProjectAccepted.self),
                replayed: response.headers[PlatformHeader.idempotentReplayed]?.lowercased() == "true"
            )
        } catch HTTPClientError.status(409, let body) {
            throw Failure.conflict(ErrorEnvelope(body: body))
        } catch HTTPClientError.status(422, let body) {
            throw Failure.refused(ErrorEnvelope(body: body))
        } catch let error as HTTPClientError {
            throw Failure.unavailable(error)
        }
    }
}
