import Foundation

/// What a caller may do with a bucket's objects — the platform's per-bucket policies in place of
/// Supabase's row-level security on `storage.objects`:
///
/// | caller | read | write a new object | replace, move, remove |
/// |---|---|---|---|
/// | the secret key (`service`) | all | yes | all |
/// | anyone with the project's key, public bucket | all | no | no |
/// | a signed-in user, `user_access: owner` | their own | yes (they own it) | their own |
/// | a signed-in user, `user_access: authenticated_read` | all | yes | their own |
/// | the publishable key alone, private bucket | nothing | no | no |
enum BucketPolicy {
    static func mayRead(_ object: StoredObject, in bucket: Bucket, by principal: StorageAccess.Principal) -> Bool {
        switch principal {
        case .service: true
        case .anonymous: bucket.isPublic
        case .user(let id): bucket.isPublic || bucket.userAccess == .authenticatedRead || object.owner == id
        }
    }

    /// Whether the caller may see the bucket's listing at all, and whose objects in it.
    static func listing(of bucket: Bucket, by principal: StorageAccess.Principal) -> Listing {
        switch principal {
        case .service: .all
        case .anonymous: bucket.isPublic ? .all : .nothing
        case .user(let id): bucket.isPublic || bucket.userAccess == .authenticatedRead ? .all : .ownedBy(id)
        }
    }

    enum Listing: Equatable {
        case all
        case ownedBy(UUID)
        case nothing
    }

    static func mayWrite(by principal: StorageAccess.Principal) -> Bool {
        principal != .anonymous
    }

    /// The user whose objects alone a change may touch (nil: any object, for the service).
    static func actingUser(_ principal: StorageAccess.Principal) -> UUID? {
        principal.userID
    }
}
