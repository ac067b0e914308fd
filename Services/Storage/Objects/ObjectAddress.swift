import Foundation
import Hummingbird
import ServiceKit

/// The bucket and object name a route's path names (`…/:bucket/**`): the name from the raw path
/// (`ObjectName`, 422 for one that could escape or collide), the bucket from the tenant's. A
/// private bucket is found only by the service and signed-in users, as in Supabase.
enum ObjectAddress {
    static func resolve(_ request: Request, _ context: PlatformRequestContext, buckets: BucketStore, tenant: UUID,
                        principal: StorageAccess.Principal) async throws -> (bucket: Bucket, name: String) {
        let name = try ObjectName.fromRequest(path: request.uri.path, endpoint: context.endpointPath ?? "")
        guard let id = BucketRules.fromPath(try context.parameters.require("bucket")),
              let bucket = try await buckets.bucket(id, tenant: tenant)
        else { throw StorageError.bucketNotFound }
        if principal == .anonymous, !bucket.isPublic { throw StorageError.bucketNotFound }
        return (bucket, name)
    }

    /// `resolve`, and the object of that name in the same round trip (nil when there is none).
    static func locate(_ request: Request, _ context: PlatformRequestContext, objects: ObjectStore, tenant: UUID,
                       principal: StorageAccess.Principal) async throws -> (bucket: Bucket, name: String, object: StoredObject?) {
        let name = try ObjectName.fromRequest(path: request.uri.path, endpoint: context.endpointPath ?? "")
        guard let id = BucketRules.fromPath(try context.parameters.require("bucket")),
              let found = try await objects.object(name, inBucket: id, tenant: tenant)
        else { throw StorageError.bucketNotFound }
        if principal == .anonymous, !found.bucket.isPublic { throw StorageError.bucketNotFound }
        return (found.bucket, name, found.object)
    }
}
