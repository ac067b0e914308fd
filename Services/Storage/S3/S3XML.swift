import Foundation
import HTTPTypes
import Hummingbird

/// S3's XML (docs/protocols/storage-reference.md §8.3): answers written with the prolog and
/// S3's namespace on the root, lists as repeated siblings; and the two request bodies S3
/// clients send (`<Delete>`, `<CompleteMultipartUpload>`) read by a small parser that knows
/// elements and text only. No DTDs or entities beyond XML's five and numeric references: a
/// `<!DOCTYPE` is refused, so nothing can be expanded or fetched.
enum S3XML {
    static let contentType = "application/xml; charset=utf-8"
    static let prolog = #"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>"#
    static let namespace = "http://s3.amazonaws.com/doc/2006-03-01/"

    // MARK: Writing

    static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            case "\r": out += "&#13;"
            default:
                // XML 1.0 cannot carry other control characters (object names never hold them).
                if scalar.value < 0x20, scalar != "\n", scalar != "\t" { out += "&#\(scalar.value);" } else { out.unicodeScalars.append(scalar) }
            }
        }
        return out
    }

    /// `<name>text</name>`, the text escaped.
    static func element(_ name: String, _ text: String) -> String {
        "<\(name)>\(escape(text))</\(name)>"
    }

    /// `<name>children</name>` (children already XML).
    static func group(_ name: String, _ children: String) -> String {
        "<\(name)>\(children)</\(name)>"
    }

    /// A whole answer: prolog, root element in S3's namespace (`namespaced: false` for
    /// `<Error>`, which S3 writes without one and botocore only recognises so).
    static func response(_ root: String, _ children: String, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:],
                         namespaced: Bool = true) -> Response {
        var fields = headers
        fields[.contentType] = contentType
        let open = namespaced ? "<\(root) xmlns=\"\(namespace)\">" : "<\(root)>"
        let text = prolog + open + children + "</\(root)>"
        return Response(status: status, headers: fields, body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
    }

    /// ISO 8601 with milliseconds in UTC, as S3 writes `LastModified`.
    static func timestamp(_ date: Date) -> String {
        date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
    }

    // MARK: Reading

    /// An element: its local name (any `prefix:` dropped), its text (entities decoded), and its
    /// child elements in order.
    struct Element: Sendable, Equatable {
        var name: String
        var text: String = ""
        var children: [Element] = []

        func children(_ name: String) -> [Element] { children.filter { $0.name == name } }
        func child(_ name: String) -> Element? { children.first { $0.name == name } }
    }

    struct Malformed: Error, Equatable {
        var reason: String
    }

    static let maximumDepth = 8

    /// The document's root element.
    static func parse(_ bytes: [UInt8]) throws -> Element {
        var index = 0
        var stack: [Element] = []
        var root: Element?
        func fail(_ reason: String) -> Malformed { Malformed(reason: reason) }
        while index < bytes.count {
            if bytes[index] != UInt8(ascii: "<") {
                let start = index
                while index < bytes.count, bytes[index] != UInt8(ascii: "<") { index += 1 }
                let text = try decodeEntities(bytes[start..<index])
                if stack.isEmpty {
                    guard text.allSatisfy(\.isWhitespace) else { throw fail("text outside the root element") }
                } else {
                    stack[stack.count - 1].text += text
                }
                continue
            }
            guard let close = bytes[index...].firstIndex(of: UInt8(ascii: ">")) else { throw fail("an unclosed tag") }
            let tag = bytes[(index + 1)..<close]
            index = close + 1
            guard let first = tag.first else { throw fail("an empty tag") }
            switch first {
            case UInt8(ascii: "?"):
                continue  // the prolog, a processing instruction
            case UInt8(ascii: "!"):
                // Comments only: no DOCTYPE, no CDATA.
                guard tag.starts(with: Array("!--".utf8)) else { throw fail("DOCTYPE and CDATA are not accepted") }
                if !(tag.count >= 5 && tag.suffix(2).elementsEqual(Array("--".utf8))) {
                    guard let end = findSequence(Array("-->".utf8), in: bytes, from: index) else { throw fail("an unclosed comment") }
                    index = end + 3
                }
            case UInt8(ascii: "/"):
                let name = localName(tag.dropFirst())
                guard let open = stack.popLast(), open.name == name else { throw fail("mismatched closing tag </\(name)>") }
                if stack.isEmpty {
                    guard root == nil else { throw fail("more than one root element") }
                    root = open
                } else {
                    stack[stack.count - 1].children.append(open)
                }
            default:
                let selfClosing = tag.last == UInt8(ascii: "/")
                let name = localName(selfClosing ? tag.dropLast() : tag[...])
                guard !name.isEmpty else { throw fail("an element without a name") }
                guard stack.count < maximumDepth else { throw fail("elements nested too deep") }
                guard root == nil else { throw fail("more than one root element") }
                let element = Element(name: name)
                if selfClosing {
                    if stack.isEmpty { root = element } else { stack[stack.count - 1].children.append(element) }
                } else {
                    stack.append(element)
                }
            }
        }
        guard stack.isEmpty, let root else { throw fail("the document is incomplete") }
        return root
    }

    /// The name of `tag` up to whitespace (attributes are ignored), without a namespace prefix.
    private static func localName(_ tag: ArraySlice<UInt8>) -> String {
        let name = tag.prefix { $0 != 0x20 && $0 != 0x09 && $0 != 0x0A && $0 != 0x0D && $0 != UInt8(ascii: "/") }
        let text = String(decoding: name, as: UTF8.self)
        return text.split(separator: ":").last.map(String.init) ?? text
    }

    private static func findSequence(_ needle: [UInt8], in bytes: [UInt8], from start: Int) -> Int? {
        guard bytes.count >= needle.count, start <= bytes.count - needle.count else { return nil }
        for index in start...(bytes.count - needle.count) where bytes[index..<(index + needle.count)].elementsEqual(needle) {
            return index
        }
        return nil
    }

    private static func decodeEntities(_ bytes: ArraySlice<UInt8>) throws -> String {
        let text = String(decoding: bytes, as: UTF8.self)
        guard text.contains("&") else { return text }
        var out = ""
        var rest = Substring(text)
        while let amp = rest.firstIndex(of: "&") {
            out += rest[..<amp]
            guard let semicolon = rest[amp...].firstIndex(of: ";") else { throw Malformed(reason: "an unterminated entity") }
            let entity = rest[rest.index(after: amp)..<semicolon]
            switch entity {
            case "amp": out += "&"
            case "lt": out += "<"
            case "gt": out += ">"
            case "quot": out += "\""
            case "apos": out += "'"
            default:
                let number: UInt32?
                if entity.hasPrefix("#x") || entity.hasPrefix("#X") {
                    number = UInt32(entity.dropFirst(2), radix: 16)
                } else if entity.hasPrefix("#") {
                    number = UInt32(entity.dropFirst())
                } else {
                    number = nil
                }
                guard let number, let scalar = Unicode.Scalar(number) else { throw Malformed(reason: "an unknown entity &\(entity);") }
                out.unicodeScalars.append(scalar)
            }
            rest = rest[rest.index(after: semicolon)...]
        }
        out += rest
        return out
    }
}
