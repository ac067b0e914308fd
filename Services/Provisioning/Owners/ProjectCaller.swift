import Foundation
import ServiceKit

/// Who calls the project API, and so which projects they may see.
enum ProjectCaller: Sendable, Equatable {
    /// The platform's service token: every project, and creating one for any developer.
    case operatorToken
    /// A signed-in developer: their own projects only. Another developer's project answers
    /// 404, exactly as a project that does not exist, so ids cannot be probed.
    case developer(UUID)

    /// The owner a store query is limited to; nil for the operator (every project).
    var owner: UUID? {
        switch self {
        case .operatorToken: nil
        case .developer(let id): id
        }
    }

    /// A name for logs and idempotency scopes.
    var label: String {
        switch self {
        case .operatorToken: "operator"
        case .developer(let id): "developer:" + id.uuidString.lowercased()
        }
    }

    /// Who owns what the caller makes (a project, a webhook endpoint): a developer makes it for
    /// themselves (naming anyone else in `owner_id` is 422), the operator for the developer
    /// `owner_id` names (required).
    func owner(requested: UUID?, of what: String) throws -> UUID {
        switch self {
        case .developer(let id):
            guard requested == nil || requested == id else {
                throw APIError.validation(field: "owner_id", "A developer makes \(what) for themselves; leave owner_id out.")
            }
            return id
        case .operatorToken:
            guard let requested else { throw APIError.validation(field: "owner_id", "The operator names the developer who owns \(what).") }
            return requested
        }
    }
}
