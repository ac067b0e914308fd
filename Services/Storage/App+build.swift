import Foundation
import Hummingbird
import NIOPosix
import ServiceKit
import TenantKit

/// Builds the storage service: per-tenant buckets and objects on local disk, through the Storage
/// API under `/storage/v1/` (what storage3 and supabase-js speak), and the tenant registry with
/// each tenant's directory and quota. The executable and the tests call this same function, so
/// what is tested is what runs.
public func buildApplication(_ configuration: ServiceConfiguration) throws -> some ApplicationProtocol {
    let runtime = ServiceRuntime(configuration: configuration, migrations: try TenantRegistry.migrations(with: ServiceRuntime.bundledMigrations(in: .module)),
                                 apiDocument: try APIDocument.bundled(in: .module))
    let settings = try StorageSettings(environment: configuration.environment)
    runtime.logger.info("tenant objects stored on local disk", metadata: ["storage.root": "\(settings.root.path)"])
    let registry = runtime.tenantRegistry(insertValues: [.init(column: "quota_bytes", value: settings.defaultQuotaBytes)])
    // Tenant credentials are checked against auth's answers, cached (TenantKit).
    let (authenticator, closeClient) = try runtime.remoteTenantAuthenticator()
    // Object files get threads of their own: an fsync of a large upload holds one for a while,
    // and must not stall every other file operation behind NIO's two shared ones.
    let fileThreads = NIOThreadPool(numberOfThreads: 16)
    fileThreads.start()
    let router = buildRouter(runtime, registry: registry, directories: TenantDirectories(root: settings.root), authenticator: authenticator,
                             settings: settings, files: ObjectFiles(root: settings.root, threadPool: fileThreads),
                             proxies: try TrustedProxies(configuration: configuration))
    return runtime.makeApplication(router: router, services: [closeClient, ShutdownAction { try? await fileThreads.shutdownGracefully() }])
}

/// The routes of storage, from the parts `buildApplication` made: the runtime's standard
/// middleware and operational routes, the internal tenant registry (whose hooks keep each
/// tenant's directory), and the tenant routes.
func buildRouter(
    _ runtime: ServiceRuntime, registry: TenantRegistry, directories: TenantDirectories, authenticator: TenantAuthenticator,
    settings: StorageSettings, files: ObjectFiles, proxies: TrustedProxies = .none
) -> Router<PlatformRequestContext> {
    let router = runtime.makeRouter()
    // A tenant's directory is made with its registration (again on every PUT, so a missing one
    // comes back) and removed with it; both inside the registry's transaction.
    TenantRegistryController(
        registry: registry,
        afterRegister: { tenant in try await directories.create(for: tenant.id) },
        afterRemove: { id in try await directories.remove(for: id) }
    ).addRoutes(to: runtime.internalRoutes(router))
    ConsistencyController(check: ConsistencyCheck(pool: runtime.pool, files: files, directories: directories))
        .addRoutes(to: runtime.internalRoutes(router))
    TenantLimitsController(registry: registry, authenticator: authenticator, columns: ["quota_bytes"]).addRoutes(to: router)

    // The Storage API for Supabase's clients: the project from the apikey or the host, errors
    // in the Storage API's shape.
    router.add(middleware: ProtocolErrorMiddleware(StorageErrors(), prefix: "/storage/v1", routes: runtime.routeTable))
    let storage = router.group("/storage/v1")
    let access = StorageAccess(projects: ProjectResolver(credentials: authenticator.resolver, configuration: runtime.configuration),
                               tenants: TenantLookup(registry: registry), credentials: authenticator.resolver)
    let buckets = BucketStore(pool: runtime.pool)
    let objects = ObjectStore(pool: runtime.pool)
    let writer = ObjectWriter(objects: objects, files: files, maximumObjectBytes: settings.maximumObjectBytes)
    BucketsController(access: access, buckets: buckets, objects: objects, files: files, maximumObjectBytes: settings.maximumObjectBytes)
        .addRoutes(to: storage)
    let download = ObjectDownload(files: files)
    ObjectsController(access: access, buckets: buckets, objects: objects, files: files, writer: writer, download: download)
        .addRoutes(to: storage)
    let signingKeys = SigningKeyStore(pool: runtime.pool)
    SignedURLsController(access: access, buckets: buckets, objects: objects, keys: signingKeys, writer: writer,
                         download: download)
        .addRoutes(to: storage)
    ResumableController(access: access, buckets: buckets, objects: objects, uploads: ResumableUploadStore(pool: runtime.pool),
                        files: ResumableFiles(files: files), writer: writer, maximumObjectBytes: settings.maximumObjectBytes, locks: UploadLocks(),
                        keys: signingKeys)
        .addRoutes(to: storage)

    // The S3-compatible endpoint (/storage/v1/s3, its errors as S3's XML) and the project's S3
    // access keys on the developer API.
    let s3Credentials = S3CredentialStore(pool: runtime.pool)
    S3CredentialsController(registry: registry, authenticator: authenticator, credentials: s3Credentials).addRoutes(to: router)
    S3Controller(access: S3Access(credentials: s3Credentials, registry: registry, proxies: proxies), buckets: buckets, objects: objects, files: files,
                 writer: writer, download: ObjectDownload(files: files),
                 multipart: S3Multipart(store: MultipartUploadStore(pool: runtime.pool), objects: objects, files: files, writer: writer,
                                        maximumObjectBytes: settings.maximumObjectBytes))
        .addRoutes(to: router, routes: runtime.routeTable)
    return router
}
