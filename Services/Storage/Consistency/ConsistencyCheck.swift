import Foundation
import Postgres

/// Compares what the rows say with what the disk holds, and repairs the difference on request
/// (the `POST /internal/v1/consistency` route and the `storage check` command).
///
/// | found | how it can happen | repair |
/// |---|---|---|
/// | a version file no row names | a crash between an upload's rename and its row; a replaced version whose removal never ran | the file is removed |
/// | a row whose version file is missing | a file lost outside the service (a restore, a disk fault) | the row goes, its bytes freed from the quota: the object cannot be read anyway |
/// | an upload file | an upload cut by a crash (a cut connection removes its own) | the file is removed |
/// | an expired resumable upload | a TUS upload abandoned for an hour | its row and its file go |
/// | a resumable upload's file without its row | a crash between the file and the row, or after the commit | the file is removed |
/// | an S3 multipart part file (or a whole upload's directory) without its row | a crash between a part's file and its row; an abort or completion whose files could not go | the file (or directory) is removed |
/// | a recorded use that is not the sum of the objects' sizes | a repair of rows, an operator's change | the use is set to the sum |
/// | a tenant directory without a tenant | a removal whose directory could not go | the directory is removed |
///
/// **Never a live file.** The rows are read before the disk, and a file is judged only when it
/// last changed more than `grace` ago: an upload being written, a version renamed into place or
/// a copy's hard link not yet named by its row (both change the file's status time) is younger,
/// and left alone. Each repair asks again first — is the file still missing, does a row name the
/// version now — and names the version it found, so a row replaced since is left as it is.
struct ConsistencyCheck: Sendable {
    let store: ConsistencyStore
    let files: ObjectFiles
    let directories: TenantDirectories
    let resumableUploads: ResumableUploadStore
    let resumableFiles: ResumableFiles
    let multipartUploads: MultipartUploadStore

    /// The check over the service's database and files.
    init(pool: PostgresPool, files: ObjectFiles, directories: TenantDirectories) {
        self.store = ConsistencyStore(pool: pool)
        self.files = files
        self.directories = directories
        self.resumableUploads = ResumableUploadStore(pool: pool)
        self.resumableFiles = ResumableFiles(files: files)
        self.multipartUploads = MultipartUploadStore(pool: pool)
    }

    /// How long a file must have been left unchanged before it is judged (default one hour).
    static let defaultGrace: TimeInterval = 3600

    struct MissingFile: Encodable, Sendable, Hashable {
        var bucket: String
        var name: String
        var version: String
    }

    struct Usage: Encodable, Sendable, Hashable {
        var recorded: Int64
        var actual: Int64
    }

    /// What one tenant's check found (and, with `repair`, repaired).
    struct TenantReport: Encodable, Sendable {
        var tenant: String
        var filesWithoutRows: [String] = []
        var rowsWithoutFiles: [MissingFile] = []
        var staleUploads: [String] = []
        var expiredResumableUploads: [String] = []
        var resumableFilesWithoutRows: [String] = []
        /// Part files, as `<upload>/<file>`, or whole upload directories, as `<upload>/`.
        var multipartFilesWithoutRows: [String] = []
        /// When the recorded use is not the sum of the sizes (before any repair); else nil.
        var usage: Usage?

        var isConsistent: Bool {
            filesWithoutRows.isEmpty && rowsWithoutFiles.isEmpty && staleUploads.isEmpty && expiredResumableUploads.isEmpty
                && resumableFilesWithoutRows.isEmpty && multipartFilesWithoutRows.isEmpty && usage == nil
        }

        enum CodingKeys: String, CodingKey {
            case tenant
            case filesWithoutRows = "files_without_rows"
            case rowsWithoutFiles = "rows_without_files"
            case staleUploads = "stale_uploads"
            case expiredResumableUploads = "expired_resumable_uploads"
            case resumableFilesWithoutRows = "resumable_files_without_rows"
            case multipartFilesWithoutRows = "multipart_files_without_rows"
            case usage
        }

        /// Every key present, `usage` null when the use is right.
        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(tenant, forKey: .tenant)
            try container.encode(filesWithoutRows, forKey: .filesWithoutRows)
            try container.encode(rowsWithoutFiles, forKey: .rowsWithoutFiles)
            try container.encode(staleUploads, forKey: .staleUploads)
            try container.encode(expiredResumableUploads, forKey: .expiredResumableUploads)
            try container.encode(resumableFilesWithoutRows, forKey: .resumableFilesWithoutRows)
            try container.encode(multipartFilesWithoutRows, forKey: .multipartFilesWithoutRows)
            try container.encode(usage, forKey: .usage)
        }
    }

    struct Report: Encodable, Sendable {
        var repaired: Bool
        /// The tenants with findings (the consistent ones are only counted).
        var tenants: [TenantReport] = []
        var tenantsChecked = 0
        var directoriesWithoutTenants: [String] = []

        var isConsistent: Bool { tenants.isEmpty && directoriesWithoutTenants.isEmpty }

        enum CodingKeys: String, CodingKey {
            case consistent, repaired, tenants
            case tenantsChecked = "tenants_checked"
            case directoriesWithoutTenants = "directories_without_tenants"
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(isConsistent, forKey: .consistent)
            try container.encode(repaired, forKey: .repaired)
            try container.encode(tenantsChecked, forKey: .tenantsChecked)
            try container.encode(tenants, forKey: .tenants)
            try container.encode(directoriesWithoutTenants, forKey: .directoriesWithoutTenants)
        }
    }

    /// Checks one tenant, or every tenant and the directories of tenants that are gone.
    func run(tenant: UUID? = nil, repair: Bool, grace: TimeInterval = defaultGrace, now: Date = Date()) async throws -> Report {
        let cutoff = now.addingTimeInterval(-grace)
        var report = Report(repaired: repair)
        let tenants = try await store.tenants()
        for id in tenants where tenant == nil || id == tenant {
            let found = try await check(id, repair: repair, cutoff: cutoff)
            report.tenantsChecked += 1
            if !found.isConsistent { report.tenants.append(found) }
        }
        guard tenant == nil else { return report }
        let registered = Set(tenants)
        for directory in try await directories.inventory() where !registered.contains(directory.id) && directory.changed < cutoff {
            report.directoriesWithoutTenants.append(directory.id.uuidString.lowercased())
            if repair { try await directories.remove(for: directory.id) }
        }
        return report
    }

    private func check(_ tenant: UUID, repair: Bool, cutoff: Date) async throws -> TenantReport {
        var report = TenantReport(tenant: tenant.uuidString.lowercased())
        // The rows first: a row committed after this read has its file already, so it cannot
        // be taken for a file without a row unless it is younger than the grace.
        let rows = try await store.versions(tenant: tenant)
        let disk = try await files.inventory(tenant: tenant)

        for (version, row) in rows.sorted(by: { ($0.value.bucket, $0.value.name) < ($1.value.bucket, $1.value.name) })
        where disk.versions[version] == nil {
            guard try await !files.exists(version: version, tenant: tenant) else { continue }
            report.rowsWithoutFiles.append(MissingFile(bucket: row.bucket, name: row.name, version: version.uuidString.lowercased()))
            if repair { _ = try await store.removeRow(version: version, tenant: tenant) }
        }
        for (version, changed) in disk.versionsChanged.sorted(by: { $0.key.uuidString < $1.key.uuidString })
        where rows[version] == nil && changed < cutoff {
            guard try await !store.names(version: version) else { continue }
            report.filesWithoutRows.append(version.uuidString.lowercased())
            if repair { try await files.remove(version: version, tenant: tenant) }
        }
        for upload in disk.uploads.sorted(by: { $0.id.uuidString < $1.id.uuidString }) where upload.modified < cutoff {
            report.staleUploads.append(upload.id.uuidString.lowercased())
            if repair { await files.discard(upload.id, tenant: tenant) }
        }
        try await checkResumable(tenant, into: &report, repair: repair, cutoff: cutoff)
        try await checkMultipart(tenant, into: &report, repair: repair, cutoff: cutoff)
        if let usage = try await store.usage(tenant: tenant), usage.recorded != usage.actual {
            report.usage = Usage(recorded: usage.recorded, actual: usage.actual)
            if repair { try await store.correctUsage(tenant: tenant) }
        }
        return report
    }

    /// Resumable (TUS) uploads: expired ones, and files whose upload row is gone. The rows first,
    /// then the files, and a file younger than the grace is left: one being created has no row yet.
    private func checkResumable(_ tenant: UUID, into report: inout TenantReport, repair: Bool, cutoff: Date) async throws {
        let live = try await resumableUploads.liveIDs(tenant: tenant)
        let expired = try await resumableUploads.expired(tenant: tenant)
        report.expiredResumableUploads = expired.map { $0.uuidString.lowercased() }.sorted()
        if repair, !expired.isEmpty {
            for id in try await resumableUploads.removeExpired(tenant: tenant) { await resumableFiles.remove(id, tenant: tenant) }
        }
        for file in try await resumableFiles.inventory(tenant: tenant).sorted(by: { $0.id.uuidString < $1.id.uuidString })
        where !live.contains(file.id) && file.modified < cutoff {
            report.resumableFilesWithoutRows.append(file.id.uuidString.lowercased())
            if repair { await resumableFiles.remove(file.id, tenant: tenant) }
        }
    }

    /// S3 multipart uploads' part files whose rows are gone: the rows first, then the files, and
    /// a file (or directory) younger than the grace is left — a part between its file and its row.
    private func checkMultipart(_ tenant: UUID, into report: inout TenantReport, repair: Bool, cutoff: Date) async throws {
        let rows = try await multipartUploads.files(tenant: tenant)
        for directory in try await files.multipartInventory(tenant: tenant).sorted(by: { $0.upload.uuidString < $1.upload.uuidString }) {
            let upload = directory.upload.uuidString.lowercased()
            guard rows.uploads.contains(directory.upload) else {
                if directory.changed < cutoff, directory.files.allSatisfy({ $0.changed < cutoff }) {
                    report.multipartFilesWithoutRows.append(upload + "/")
                    if repair { await files.removeMultipart(directory.upload, tenant: tenant) }
                }
                continue
            }
            for file in directory.files.sorted(by: { $0.id.uuidString < $1.id.uuidString })
            where !rows.parts.contains(file.id) && file.changed < cutoff {
                report.multipartFilesWithoutRows.append(upload + "/" + file.id.uuidString.lowercased())
                if repair { await files.removePart(file: file.id, multipart: directory.upload, tenant: tenant) }
            }
        }
    }
}
