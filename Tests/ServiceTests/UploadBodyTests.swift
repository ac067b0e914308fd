import Contracts
import Crypto
import Foundation
import HTTPTypes
import Hummingbird
@testable import Storage
import Testing

/// `UploadBody.read`: an upload's body as storage3, storage-js and curl send it
/// (docs/protocols/storage-reference.md §3.1), through requests whose bodies arrive in pieces.
@Suite("Upload bodies")
struct UploadBodyTests {
    /// How a body is cut into the buffers that arrive: every fixed size the task names, and
    /// seeded random cuts.
    static let splits: [Split] = [.fixed(1), .fixed(2), .fixed(7), .fixed(4096), .random(seed: 1, max: 13), .random(seed: 2, max: 300), .random(seed: 3, max: 5000)]

    // MARK: What the clients send

    @Test("storage3's upload, as captured: the fields before the file, the file part named file", arguments: splits)
    func storage3Upload(split: Split) async throws {
        let upload = try await UploadBody.read(try Fixture.request("storage3-upload.http", split: split))
        #expect(upload.contentType == "image/png")
        #expect(upload.cacheControl == "max-age=60")
        #expect(upload.userMetadata == nil)
        #expect(upload.declaredLength == nil)
        #expect(try await collect(upload) == Array("hello from storage3\n".utf8))
    }

    @Test("storage3's upload with metadata: the metadata field as a JSON object", arguments: splits)
    func storage3Metadata(split: Split) async throws {
        let upload = try await UploadBody.read(try Fixture.request("storage3-upload-metadata.http", split: split))
        #expect(upload.contentType == "image/png")
        #expect(upload.cacheControl == "max-age=60")
        #expect(upload.userMetadata == .object(["owner": .string("ada"), "tags": .array([.string("x"), .string("y")]), "n": .number(1)]))
        #expect(try await collect(upload) == Array("hello from storage3\n".utf8))
    }

    @Test("storage3's update with its defaults: cacheControl 3600, text/plain;charset=UTF-8")
    func storage3Defaults() async throws {
        for split in Self.splits {
            let upload = try await UploadBody.read(try Fixture.request("storage3-update-defaults.http", split: split))
            #expect(upload.contentType == "text/plain;charset=UTF-8")
            #expect(upload.cacheControl == "max-age=3600")
            #expect(try await collect(upload) == Array("hello from storage3\n".utf8))
        }
    }

    @Test("storage-js's Blob form: the file part has an empty field name; binary content with CRLF and dashes", arguments: splits)
    func storageJSBlob(split: Split) async throws {
        let binary: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x2D, 0x2D, 0x0D, 0x0A, 0x00, 0xFF]
        let plain = try await UploadBody.read(try Fixture.request("storage-js-blob.http", split: split))
        #expect(plain.contentType == "image/png")
        #expect(plain.cacheControl == "max-age=3600")
        #expect(plain.userMetadata == nil)
        #expect(try await collect(plain) == binary)

        let withMetadata = try await UploadBody.read(try Fixture.request("storage-js-blob-metadata.http", split: split))
        #expect(withMetadata.userMetadata == .object(["owner": .string("ada"), "n": .number(1)]))
        #expect(try await collect(withMetadata) == binary)
    }

    @Test("a raw body with storage-js's headers: content type, cache-control verbatim, x-metadata, the declared length")
    func rawWithHeaders() async throws {
        let content = Array("raw bytes\r\n--not a boundary\r\n".utf8)
        let metadata = Data(#"{"owner":"ada","nested":{"a":[1,true,null]}}"#.utf8).base64EncodedString()
        for split in Self.splits {
            let request = try makeRequest(
                ["content-type": "image/png", "cache-control": "max-age=3600", "x-metadata": metadata, "content-length": String(content.count)],
                body: content, split: split)
            let upload = try await UploadBody.read(request)
            #expect(upload.contentType == "image/png")
            #expect(upload.cacheControl == "max-age=3600")
            #expect(upload.userMetadata == .object(["owner": .string("ada"), "nested": .object(["a": .array([.number(1), .bool(true), .null])])]))
            #expect(upload.declaredLength == Int64(content.count))
            #expect(try await collect(upload) == content)
        }
    }

    @Test("a raw body without headers (curl): application/octet-stream, no-cache, no metadata, no declared length")
    func rawWithoutHeaders() async throws {
        let upload = try await UploadBody.read(try makeRequest([:], body: Array("x".utf8), split: .fixed(1)))
        #expect(upload.contentType == "application/octet-stream")
        #expect(upload.cacheControl == "no-cache")
        #expect(upload.userMetadata == nil)
        #expect(upload.declaredLength == nil)
        #expect(try await collect(upload) == Array("x".utf8))

        let empty = try await UploadBody.read(try makeRequest(["content-length": "0"], body: [], split: .fixed(1)))
        #expect(empty.declaredLength == 0)
        #expect(try await collect(empty) == [])
    }

    @Test("x-metadata that is not base64 of a JSON object is ignored, as Supabase ignores it")
    func rawUndecodableMetadata() async throws {
        let values = ["%%% not base64", Data("not json".utf8).base64EncodedString(), Data("[1,2]".utf8).base64EncodedString(),
                      Data(#"{"a":"\u0000"}"#.utf8).base64EncodedString()]
        for value in values {
            let upload = try await UploadBody.read(try makeRequest(["x-metadata": value], body: [1], split: .fixed(1)))
            #expect(upload.userMetadata == nil, "\(value)")
        }
        // Unpadded base64 is still base64.
        let unpadded = Data(#"{"a":1}"#.utf8).base64EncodedString().trimmingCharacters(in: CharacterSet(charactersIn: "="))
        let upload = try await UploadBody.read(try makeRequest(["x-metadata": unpadded], body: [1], split: .fixed(1)))
        #expect(upload.userMetadata == .object(["a": .number(1)]))
    }

    @Test("a content type other than multipart/form-data is a raw body, whatever it looks like")
    func otherTypesAreRaw() async throws {
        let form = Form(parts: [.file(name: "file", filename: "a", body: [1, 2, 3])])
        let upload = try await UploadBody.read(try makeRequest(["content-type": "multipart/mixed; boundary=\(form.boundary)"], body: form.bytes(), split: .fixed(7)))
        #expect(upload.contentType == "multipart/mixed; boundary=\(form.boundary)")
        #expect(try await collect(upload) == form.bytes())
    }

    // MARK: Multipart rules

    @Test("the boundary, quoted or not; the media type in any case")
    func boundaryForms() async throws {
        let form = Form(boundary: "a'()+_,-./:=? b", parts: [.file(name: "file", filename: "a", body: Array("content".utf8))])
        for header in ["multipart/form-data; boundary=\"a'()+_,-./:=? b\"", "Multipart/Form-Data;boundary=\"a'()+_,-./:=? b\"; charset=utf-8"] {
            let upload = try await UploadBody.read(try makeRequest(["content-type": header], body: form.bytes(), split: .fixed(3)))
            #expect(try await collect(upload) == Array("content".utf8), "\(header)")
        }
        let simple = Form(boundary: "simple123", parts: [.file(name: "file", filename: "a", body: Array("content".utf8))])
        let upload = try await UploadBody.read(try makeRequest(["content-type": "multipart/form-data; boundary=simple123"], body: simple.bytes(), split: .fixed(3)))
        #expect(try await collect(upload) == Array("content".utf8))

        for header in ["multipart/form-data", "multipart/form-data; boundary=", "multipart/form-data; boundary=\"\"",
                       "multipart/form-data; boundary=\(String(repeating: "b", count: 71))", "multipart/form-data; boundary=\"é\""] {
            let error = await #expect(throws: UploadBodyError.self, "\(header)") {
                try await UploadBody.read(try makeRequest(["content-type": header], body: [], split: .fixed(1)))
            }
            #expect(error.isMalformed, "\(header)")
        }
    }

    @Test("binary content full of CRLF, dashes and near-boundaries is not cut: only the real delimiter ends the file", arguments: splits)
    func nearBoundaries(split: Split) async throws {
        let boundary = "----formdata-undici-058614834635"
        let tricky: [[UInt8]] = [
            Array("\r\n--".utf8), Array("\r\n--\(boundary.dropLast())".utf8), Array("\r\n-\(boundary)".utf8), Array("\r--\(boundary)".utf8),
            Array("\n--\(boundary)".utf8), Array("\r\n--\(boundary.dropFirst())".utf8), [0x0D], [0x0D, 0x0A], Array("--\(boundary)".utf8),
        ]
        var content: [UInt8] = []
        for (index, piece) in tricky.enumerated() {
            content += piece + [UInt8(index)] + [0x00, 0xFF]
        }
        content += Array("\r\n--\(boundary.dropLast())".utf8)  // the file even ends with most of a delimiter
        let form = Form(boundary: boundary, parts: [.field("cacheControl", "7"), .file(name: "", filename: "blob", body: content)])
        let upload = try await UploadBody.read(try form.request(split: split))
        #expect(upload.cacheControl == "max-age=7")
        #expect(try await collect(upload) == content)
    }

    @Test("the first part with a filename is the file, whatever its name; parts after it are ignored and drained")
    func firstFileWins() async throws {
        let form = Form(parts: [
            .field("other", "ignored"),
            .file(name: "anything", filename: "", contentType: "text/csv", body: Array("first".utf8)),
            .field("contentType", "image/gif"),
            .field("cacheControl", "1"),
            .file(name: "file", filename: "second.bin", body: Array("second".utf8)),
        ], epilogue: Array("an epilogue, which is ignored".utf8))
        for split in Self.splits {
            let upload = try await UploadBody.read(try form.request(split: split))
            #expect(upload.contentType == "text/csv")
            #expect(upload.cacheControl == "no-cache")
            #expect(try await collect(upload) == Array("first".utf8))
        }
    }

    @Test("contentType field before the file wins over the part's type; neither → application/octet-stream; filename* marks a file")
    func contentTypes() async throws {
        let overridden = Form(parts: [.field("contentType", " application/pdf "), .file(name: "file", filename: "a", contentType: "text/plain", body: [1])])
        #expect(try await UploadBody.read(try overridden.request()).contentType == "application/pdf")

        let none = Form(parts: [.raw(headers: ["Content-Disposition: form-data; name=\"f\"; filename*=UTF-8''%E2%82%AC.txt"], body: [1])])
        let upload = try await UploadBody.read(try none.request())
        #expect(upload.contentType == "application/octet-stream")
        #expect(try await collect(upload) == [1])

        let emptyField = Form(parts: [.field("contentType", ""), .file(name: "file", filename: "a", contentType: "image/webp", body: [1])])
        #expect(try await UploadBody.read(try emptyField.request()).contentType == "image/webp")

        let control = Form(parts: [.field("contentType", "text/plain\u{7}"), .file(name: "file", filename: "a", body: [1])])
        let error = await #expect(throws: UploadBodyError.self) { try await UploadBody.read(try control.request()) }
        #expect(error.isMalformed)
    }

    @Test("cacheControl: a bare integer becomes max-age, a directive list is kept, absent or empty is no-cache, anything else is malformed")
    func cacheControl() async throws {
        let cases: [(String?, String)] = [
            ("3600", "max-age=3600"), ("0", "max-age=0"), (nil, "no-cache"), ("", "no-cache"), ("  ", "no-cache"),
            ("max-age=60", "max-age=60"), ("public, max-age=31536000, immutable", "public, max-age=31536000, immutable"),
            ("no-cache", "no-cache"), ("private, community=\"UCI, x\"", "private, community=\"UCI, x\""),
        ]
        for (field, stored) in cases {
            var parts: [Form.Part] = [.file(name: "file", filename: "a", body: [1])]
            if let field { parts.insert(.field("cacheControl", field), at: 0) }
            #expect(try await UploadBody.read(try Form(parts: parts).request()).cacheControl == stored, "\(String(describing: field))")
        }
        for field in ["-1", "60s", "max-age=60;", "a b", "max-age=\"60", ", max-age=1", "max-age=1,"] {
            let form = Form(parts: [.field("cacheControl", field), .file(name: "file", filename: "a", body: [1])])
            let error = await #expect(throws: UploadBodyError.self, "\(field)") { try await UploadBody.read(try form.request()) }
            #expect(error.isMalformed, "\(field)")
        }
    }

    @Test("userMetadata is read when metadata is absent; metadata wins when both come")
    func metadataFields() async throws {
        let user = Form(parts: [.field("userMetadata", #"{"a":1}"#), .file(name: "file", filename: "a", body: [1])])
        #expect(try await UploadBody.read(try user.request()).userMetadata == .object(["a": .number(1)]))
        let both = Form(parts: [.field("userMetadata", #"{"a":1}"#), .field("metadata", #"{"b":2}"#), .file(name: "file", filename: "a", body: [1])])
        #expect(try await UploadBody.read(try both.request()).userMetadata == .object(["b": .number(2)]))
    }

    @Test("metadata that is not a JSON object (or holds a NUL character) is malformed")
    func badMetadata() async throws {
        for text in ["{not json", "[1,2]", "\"text\"", "null", "", #"{"a":"\u0000"}"#, #"{"\u0000":1}"#] {
            let form = Form(parts: [.field("metadata", text), .file(name: "file", filename: "a", body: [1])])
            let error = await #expect(throws: UploadBodyError.self, "\(text)") { try await UploadBody.read(try form.request()) }
            #expect(error.isMalformed, "\(text)")
        }
    }

    @Test("a form without a file part is noFile (Supabase: No content provided)")
    func noFile() async throws {
        let form = Form(parts: [.field("cacheControl", "3600"), .field("metadata", "{}")])
        for split in Self.splits {
            await #expect(throws: UploadBodyError.noFile) { try await UploadBody.read(try form.request(split: split)) }
        }
        await #expect(throws: UploadBodyError.noFile) { try await UploadBody.read(try Form(parts: []).request()) }
    }

    @Test("preamble, transport padding after a boundary, a part without headers, folded header lines: all read")
    func toleratedForms() async throws {
        let boundary = "b0undary"
        let body = Array((
            "a preamble, ignored\r\n--\(boundary)  \t\r\n" +
            "\r\nanonymous part, ignored\r\n--\(boundary)\r\n" +
            "Content-Disposition: form-data;\r\n\tname=\"cacheControl\"\r\n\r\n42\r\n--\(boundary)\r\n" +
            "content-disposition: FORM-DATA; filename=\"a\\\"b.txt\"; name=\"file\"\r\nCONTENT-TYPE: text/markdown\r\n\r\n# title\r\n--\(boundary)--"
        ).utf8)
        for split in Self.splits {
            let upload = try await UploadBody.read(try makeRequest(["content-type": "multipart/form-data; boundary=\(boundary)"], body: body, split: split))
            #expect(upload.cacheControl == "max-age=42")
            #expect(upload.contentType == "text/markdown")
            #expect(try await collect(upload) == Array("# title".utf8))
        }
    }

    // MARK: Malformed and truncated bodies

    @Test("a body that ends before the closing boundary: the byte sequence throws (after the file), or read does (before it)", arguments: splits)
    func truncated(split: Split) async throws {
        let content = Array(repeating: UInt8(ascii: "z"), count: 3000)
        let whole = Form(parts: [.field("cacheControl", "60"), .file(name: "file", filename: "a", body: content), .field("after", "x")]).bytes()
        let fileStart = try #require(whole.indices.first { whole[$0...].starts(with: Array("zzz".utf8)) })
        // Cut in the file's bytes, in its closing delimiter, in the part after it, just before the final dashes.
        for cut in [fileStart + 10, fileStart + content.count + 3, whole.count - 20, whole.count - 4] {
            let upload = try await UploadBody.read(try makeRequest(Form.headers(), body: Array(whole[..<cut]), split: split))
            await #expect(throws: UploadBodyError.truncated, "cut at \(cut)") { _ = try await collect(upload) }
        }
        // Cut before the file part's headers end, or before any boundary: read throws.
        for cut in [0, 10, fileStart - 3] {
            await #expect(throws: UploadBodyError.truncated, "cut at \(cut)") {
                try await UploadBody.read(try makeRequest(Form.headers(), body: Array(whole[..<cut]), split: split))
            }
        }
    }

    @Test("a stream that fails (a client gone) fails the byte sequence with its own error")
    func failingStream() async throws {
        struct Gone: Error {}
        let form = Form(parts: [.file(name: "file", filename: "a", body: Array(repeating: 7, count: 100))]).bytes()
        let body = RequestBody(asyncSequence: Chunks(bytes: Array(form.prefix(150)), split: .fixed(50), failure: Gone()))
        let upload = try await UploadBody.read(Request(head: Self.head(try httpFields(Form.headers())), body: body))
        await #expect(throws: Gone.self) { _ = try await collect(upload) }
    }

    @Test("characters after a boundary other than padding, a header line without a colon: malformed")
    func malformedForms() async throws {
        let boundary = "xyz"
        let bodies = [
            "--\(boundary)junk\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a\"\r\n\r\n1\r\n--\(boundary)--",
            "--\(boundary)\r\nno colon here\r\n\r\n1\r\n--\(boundary)--",
            "--\(boundary)\r\n: no name\r\n\r\n1\r\n--\(boundary)--",
            "--\(boundary)\r\n continued first\r\n\r\n1\r\n--\(boundary)--",
        ]
        for text in bodies {
            let error = await #expect(throws: UploadBodyError.self, "\(text)") {
                try await UploadBody.read(try makeRequest(["content-type": "multipart/form-data; boundary=\(boundary)"], body: Array(text.utf8), split: .fixed(3)))
            }
            #expect(error.isMalformed, "\(text)")
        }
        // After the file: the byte sequence throws.
        let afterFile = "--\(boundary)\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a\"\r\n\r\n1\r\n--\(boundary)junk\r\n"
        let upload = try await UploadBody.read(try makeRequest(["content-type": "multipart/form-data; boundary=\(boundary)"], body: Array(afterFile.utf8), split: .fixed(3)))
        let error = await #expect(throws: UploadBodyError.self) { _ = try await collect(upload) }
        #expect(error.isMalformed)
    }

    // MARK: Limits

    @Test("oversize fields: a field above 64 KiB, metadata above 1 MiB, too many fields, a huge header block or preamble")
    func oversize() async throws {
        let bigField = Form(parts: [.field("cacheControl", String(repeating: "1", count: 64 * 1024 + 1)), .file(name: "file", filename: "a", body: [1])])
        await #expect(throws: UploadBodyError.fieldTooLarge("cacheControl")) { try await UploadBody.read(try bigField.request(split: .fixed(4096))) }
        let unknownBig = Form(parts: [.field("whatever", String(repeating: "x", count: 64 * 1024 + 1)), .file(name: "file", filename: "a", body: [1])])
        await #expect(throws: UploadBodyError.fieldTooLarge("whatever")) { try await UploadBody.read(try unknownBig.request(split: .fixed(4096))) }

        // Exactly at the limits is fine.
        let metadataAtLimit = #"{"a":""# + String(repeating: "m", count: 1024 * 1024 - 8) + #""}"#
        #expect(metadataAtLimit.utf8.count == 1024 * 1024)
        let atLimit = Form(parts: [.field("cacheControl", String(repeating: "1", count: 64 * 1024)), .field("metadata", metadataAtLimit), .file(name: "file", filename: "a", body: [1])])
        let upload = try await UploadBody.read(try atLimit.request(split: .fixed(4096)))
        #expect(upload.userMetadata?.isObject == true)

        let metadataOver = #"{"a":""# + String(repeating: "m", count: 1024 * 1024 - 7) + #""}"#
        for name in ["metadata", "userMetadata"] {
            let form = Form(parts: [.field(name, metadataOver), .file(name: "file", filename: "a", body: [1])])
            await #expect(throws: UploadBodyError.metadataTooLarge) { try await UploadBody.read(try form.request(split: .fixed(4096))) }
        }
        let headerMetadata = Data(metadataOver.utf8).base64EncodedString()
        await #expect(throws: UploadBodyError.metadataTooLarge) {
            try await UploadBody.read(try makeRequest(["x-metadata": headerMetadata], body: [1], split: .fixed(1)))
        }

        let manyFields = Form(parts: Array(repeating: .field("f", "1"), count: 65) + [.file(name: "file", filename: "a", body: [1])])
        let tooMany = await #expect(throws: UploadBodyError.self) { try await UploadBody.read(try manyFields.request(split: .fixed(4096))) }
        #expect(tooMany.isMalformed)

        let hugeHeaders = Form(parts: [.raw(headers: ["Content-Disposition: form-data; name=\"file\"; filename=\"a\"", "X-Pad: " + String(repeating: "p", count: 16 * 1024)], body: [1])])
        let headers = await #expect(throws: UploadBodyError.self) { try await UploadBody.read(try hugeHeaders.request(split: .fixed(4096))) }
        #expect(headers.isMalformed)

        let preamble = Array(repeating: UInt8(ascii: "p"), count: 64 * 1024 + 1) + Form(parts: [.file(name: "file", filename: "a", body: [1])]).bytes()
        let longPreamble = await #expect(throws: UploadBodyError.self) {
            try await UploadBody.read(try makeRequest(Form.headers(), body: preamble, split: .fixed(4096)))
        }
        #expect(longPreamble.isMalformed)
    }

    @Test("more than 1 MiB after the file (ignored parts, epilogue) fails the byte sequence")
    func tooMuchAfterFile() async throws {
        let after = Form(parts: [.file(name: "file", filename: "a", body: [1, 2]), .field("junk", String(repeating: "j", count: 1024 * 1024))])
        let upload = try await UploadBody.read(try after.request(split: .fixed(4096)))
        let error = await #expect(throws: UploadBodyError.self) { _ = try await collect(upload) }
        #expect(error.isMalformed)

        let epilogue = Form(parts: [.file(name: "file", filename: "a", body: [1, 2])], epilogue: Array(repeating: 0, count: 1024 * 1024 + 1))
        let withEpilogue = try await UploadBody.read(try epilogue.request(split: .fixed(4096)))
        let epilogueError = await #expect(throws: UploadBodyError.self) { _ = try await collect(withEpilogue) }
        #expect(epilogueError.isMalformed)
    }

    @Test("the bytes can be read once: a second iteration throws")
    func readOnce() async throws {
        let multipart = try await UploadBody.read(try Form(parts: [.file(name: "file", filename: "a", body: [1])]).request())
        #expect(try await collect(multipart) == [1])
        await #expect(throws: UploadBodyError.alreadyConsumed) { _ = try await collect(multipart) }

        let raw = try await UploadBody.read(try makeRequest([:], body: [1], split: .fixed(1)))
        #expect(try await collect(raw) == [1])
        await #expect(throws: UploadBodyError.alreadyConsumed) { _ = try await collect(raw) }
    }

    // MARK: Streaming, memory

    @Test("a 10 MB file in odd-sized buffers streams through a window of one buffer plus a delimiter")
    func largeFileBoundedMemory() async throws {
        let boundary = "----formdata-undici-0123456789"
        let fileSize = 10_000_000
        let largestBuffer = 65_537
        let head = Form(boundary: boundary, parts: [.field("cacheControl", "3600"), .field("metadata", #"{"big":true}"#)]).bytes(close: false).dropLast(2)
            + Array("\r\n--\(boundary)\r\nContent-Disposition: form-data; name=\"\"; filename=\"big.bin\"\r\nContent-Type: application/x-big\r\n\r\n".utf8)
        let tail = Array("\r\n--\(boundary)\r\nContent-Disposition: form-data; name=\"after\"\r\n\r\nignored\r\n--\(boundary)--\r\n".utf8)
        let source = GeneratedUpload(head: Array(head), fileSize: fileSize, tail: tail, boundary: boundary, seed: 42, largestBuffer: largestBuffer)
        let gauge = BufferGauge()
        let upload = try await UploadBody.read(Request(head: Self.head(try httpFields(Form.headers(boundary: boundary))), body: RequestBody(asyncSequence: source)), gauge: gauge)
        #expect(upload.contentType == "application/x-big")
        #expect(upload.userMetadata == .object(["big": .bool(true)]))

        var hash = SHA256()
        var total = 0
        var largestChunk = 0
        for try await chunk in upload.bytes {
            chunk.withUnsafeReadableBytes { hash.update(bufferPointer: $0) }
            total += chunk.readableBytes
            largestChunk = max(largestChunk, chunk.readableBytes)
        }
        #expect(total == fileSize)
        #expect(hash.finalize() == GeneratedUpload.expectedDigest(fileSize: fileSize, boundary: boundary))
        // Nothing close to the file is ever held: at most one arriving buffer, a delimiter's
        // worth of bytes kept from the one before, or a (short) header block in progress.
        #expect(largestChunk <= largestBuffer)
        #expect(gauge.highWater <= largestBuffer + 256, "window high-water mark \(gauge.highWater)")
        #expect(gauge.highWater > 0)
    }

    // MARK: Helpers

    /// How a body is cut into buffers.
    enum Split: Sendable, CustomTestStringConvertible {
        case fixed(Int)
        case random(seed: UInt64, max: Int)
    
        var testDescription: String {
            switch self {
            case .fixed(let size): "\(size)-byte buffers"
            case .random(let seed, let max): "random buffers of 1…\(max) bytes (seed \(seed))"
            }
        }
    }

    static func head(_ fields: HTTPFields) -> HTTPRequest {
        HTTPRequest(method: .post, scheme: "http", authority: "storage", path: "/object/b/dir/a.txt", headerFields: fields)
    }
}

// MARK: - Test support

/// SplitMix64: a seeded, repeatable generator.
fileprivate struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Bytes delivered in buffers cut as a `Split` says, optionally failing after the last.
fileprivate struct Chunks: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let bytes: [UInt8]
    let split: UploadBodyTests.Split
    var failure: (any Error & Sendable)?

    struct AsyncIterator: AsyncIteratorProtocol {
        let bytes: [UInt8]
        let split: UploadBodyTests.Split
        let failure: (any Error & Sendable)?
        var offset = 0
        var generator: SeededGenerator

        mutating func next() async throws -> ByteBuffer? {
            guard offset < bytes.count else {
                if let failure { throw failure }
                return nil
            }
            let size: Int
            switch split {
            case .fixed(let fixed): size = fixed
            case .random(_, let max): size = Int.random(in: 1...max, using: &generator)
            }
            let end = Swift.min(bytes.count, offset + size)
            defer { offset = end }
            return ByteBuffer(bytes: bytes[offset..<end])
        }
    }

    func makeAsyncIterator() -> AsyncIterator {
        let seed: UInt64 = if case .random(let seed, _) = split { seed } else { 0 }
        return AsyncIterator(bytes: bytes, split: split, failure: failure, generator: SeededGenerator(state: seed))
    }
}

/// A multipart body made up in a test: fields, files, or parts with headers as given.
fileprivate struct Form {
    enum Part {
        case field(String, String)
        case file(name: String, filename: String, contentType: String? = nil, body: [UInt8])
        case raw(headers: [String], body: [UInt8])
    }

    var boundary = "XyZ-boundary_0123456789"
    var parts: [Part]
    var epilogue: [UInt8] = []

    func bytes(close: Bool = true) -> [UInt8] {
        var out: [UInt8] = []
        for part in parts {
            out += Array("--\(boundary)\r\n".utf8)
            let headers: [String]
            let body: [UInt8]
            switch part {
            case .field(let name, let value):
                headers = ["Content-Disposition: form-data; name=\"\(name)\""]
                body = Array(value.utf8)
            case .file(let name, let filename, let contentType, let content):
                headers = ["Content-Disposition: form-data; name=\"\(name)\"; filename=\"\(filename)\""] + (contentType.map { ["Content-Type: \($0)"] } ?? [])
                body = content
            case .raw(let given, let content):
                headers = given
                body = content
            }
            for header in headers { out += Array("\(header)\r\n".utf8) }
            out += Array("\r\n".utf8) + body + Array("\r\n".utf8)
        }
        if close { out += Array("--\(boundary)--\r\n".utf8) + epilogue }
        return out
    }

    static func headers(boundary: String = "XyZ-boundary_0123456789") -> [String: String] {
        ["content-type": "multipart/form-data; boundary=\(boundary)"]
    }

    func request(split: UploadBodyTests.Split = .fixed(5)) throws -> Request {
        try makeRequest(Self.headers(boundary: boundary), body: bytes(), split: split)
    }
}

/// A request's headers given as name → value, and its body cut by `split`.
fileprivate func makeRequest(_ headers: [String: String], body: [UInt8], split: UploadBodyTests.Split) throws -> Request {
    Request(head: UploadBodyTests.head(try httpFields(headers)), body: RequestBody(asyncSequence: Chunks(bytes: body, split: split)))
}

fileprivate func httpFields(_ headers: [String: String]) throws -> HTTPFields {
    var fields = HTTPFields()
    for (name, value) in headers {
        fields.append(HTTPField(name: try #require(HTTPField.Name(name)), value: value))
    }
    return fields
}

/// Everything the byte sequence yields (small bodies only).
fileprivate func collect(_ upload: UploadBody) async throws -> [UInt8] {
    var out: [UInt8] = []
    for try await chunk in upload.bytes { out += chunk.readableBytesView }
    return out
}

/// The requests in Fixtures/upload (README there): request line, headers, empty line, body.
fileprivate enum Fixture {
    static func request(_ name: String, split: UploadBodyTests.Split) throws -> Request {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/upload/\(name)")
        let bytes = [UInt8](try Data(contentsOf: url))
        let end = try #require(bytes.indices.first { bytes[$0...].starts(with: Array("\r\n\r\n".utf8)) })
        let lines = String(decoding: bytes[..<end], as: UTF8.self).components(separatedBy: "\r\n")
        let requestLine = lines[0].split(separator: " ")
        var fields = HTTPFields()
        for line in lines.dropFirst() {
            let colon = try #require(line.firstIndex(of: ":"))
            let name = try #require(HTTPField.Name(String(line[..<colon])))
            fields.append(HTTPField(name: name, value: line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)))
        }
        let body = Array(bytes[(end + 4)...])
        if let length = fields[.contentLength] { #expect(Int(length) == body.count, "\(name): Content-Length") }
        let head = HTTPRequest(method: try #require(HTTPRequest.Method(String(requestLine[0]))), scheme: "http", authority: "storage",
                               path: String(requestLine[1]), headerFields: fields)
        return Request(head: head, body: RequestBody(asyncSequence: Chunks(bytes: body, split: split)))
    }
}

/// A multipart upload generated as it is read: `head`, then `fileSize` bytes of content that
/// keeps almost spelling the delimiter, then `tail`, in buffers of random sizes up to
/// `largestBuffer`. Never held whole.
fileprivate struct GeneratedUpload: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let head: [UInt8]
    let fileSize: Int
    let tail: [UInt8]
    let boundary: String
    let seed: UInt64
    let largestBuffer: Int

    static let blockSize = 1000

    /// The file's `index`th block of 1,000 bytes: most of a delimiter (`CRLF--` and the boundary
    /// without its last character), a `#` (so that it never becomes the whole delimiter: a
    /// client picks a boundary its content does not hold), the block's number, then scrambled
    /// bytes.
    static func block(_ index: Int, boundary: String) -> [UInt8] {
        var block = Array("\r\n--\(boundary.dropLast())#".utf8)
        withUnsafeBytes(of: UInt64(index).littleEndian) { block += $0 }
        while block.count < blockSize {
            block.append(UInt8(truncatingIfNeeded: (UInt64(block.count) &* 0x9E37_79B9_7F4A_7C15) >> 29))
        }
        return block
    }

    static func expectedDigest(fileSize: Int, boundary: String) -> SHA256.Digest {
        var hash = SHA256()
        var offset = 0
        while offset < fileSize {
            let block = block(offset / blockSize, boundary: boundary)
            hash.update(data: block.prefix(Swift.min(blockSize, fileSize - offset)))
            offset += blockSize
        }
        return hash.finalize()
    }

    struct AsyncIterator: AsyncIteratorProtocol {
        let upload: GeneratedUpload
        var position = 0
        var generator: SeededGenerator

        mutating func next() async -> ByteBuffer? {
            let total = upload.head.count + upload.fileSize + upload.tail.count
            guard position < total else { return nil }
            let end = Swift.min(total, position + Int.random(in: 1...upload.largestBuffer, using: &generator))
            var buffer = ByteBuffer()
            buffer.reserveCapacity(end - position)
            while position < end {
                if position < upload.head.count {
                    let stop = Swift.min(end, upload.head.count)
                    buffer.writeBytes(upload.head[position..<stop])
                    position = stop
                } else if position < upload.head.count + upload.fileSize {
                    let offset = position - upload.head.count
                    let block = GeneratedUpload.block(offset / GeneratedUpload.blockSize, boundary: upload.boundary)
                    let from = offset % GeneratedUpload.blockSize
                    let count = Swift.min(end - position, block.count - from, upload.fileSize - offset)
                    buffer.writeBytes(block[from..<(from + count)])
                    position += count
                } else {
                    let offset = position - upload.head.count - upload.fileSize
                    let count = end - position
                    buffer.writeBytes(upload.tail[offset..<(offset + count)])
                    position = end
                }
            }
            return buffer
        }
    }

    func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(upload: self, generator: SeededGenerator(state: seed))
    }
}

fileprivate extension Optional where Wrapped == UploadBodyError {
    var isMalformed: Bool {
        if case .malformed = self { return true }
        return false
    }
}
