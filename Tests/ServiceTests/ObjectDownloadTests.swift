import Foundation
@testable import Storage
import Testing

/// The pieces of a download answer that are pure rules: HTTP dates and byte ranges.
@Suite("Object downloads")
struct ObjectDownloadTests {
    @Test("HTTP dates are RFC 9110's IMF-fixdate, read back to the second; anything else is not one")
    func httpDates() {
        let date = Date(timeIntervalSince1970: 784_111_777)
        #expect(ObjectDownload.httpDate(date) == "Sun, 06 Nov 1994 08:49:37 GMT")
        #expect(ObjectDownload.parseHTTPDate("Sun, 06 Nov 1994 08:49:37 GMT") == date)
        let now = Date(timeIntervalSince1970: Date().timeIntervalSince1970.rounded(.down))
        #expect(ObjectDownload.parseHTTPDate(ObjectDownload.httpDate(now)) == now)
        #expect(ObjectDownload.parseHTTPDate("Sunday, 06-Nov-94 08:49:37 GMT") == nil)
        #expect(ObjectDownload.parseHTTPDate("Sun, 06 Nov 1994 08:49:37 PST") == nil)
    }

    @Test("one byte range of an object: closed, open, suffix; past the end unsatisfiable; anything else the whole")
    func ranges() {
        #expect(ObjectDownload.range("bytes=0-9", size: 100) == .part(0...9))
        #expect(ObjectDownload.range("bytes=90-", size: 100) == .part(90...99))
        #expect(ObjectDownload.range("bytes=-10", size: 100) == .part(90...99))
        #expect(ObjectDownload.range("bytes=50-500", size: 100) == .part(50...99))
        #expect(ObjectDownload.range("bytes=100-", size: 100) == .unsatisfiable)
        #expect(ObjectDownload.range("bytes=0-1,5-6", size: 100) == .whole)
        #expect(ObjectDownload.range("items=0-1", size: 100) == .whole)
    }
}
