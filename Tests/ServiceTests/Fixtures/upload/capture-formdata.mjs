// Serialises the multipart body storage-js's Blob branch builds (StorageFileApi.uploadOrUpdate:
// cacheControl, metadata, then the file appended under the empty name ''), with Node's own
// FormData (undici), as fetch would send it. Not storage-js itself: npm is not reachable here.
import { writeFileSync } from 'node:fs'
const out = process.argv[2]
async function capture(name, withMetadata) {
  const body = new FormData()
  body.append('cacheControl', '3600')
  if (withMetadata) body.append('metadata', JSON.stringify({ owner: 'ada', n: 1 }))
  body.append('', new Blob([new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x2d, 0x2d, 0x0d, 0x0a, 0x00, 0xff])], { type: 'image/png' }))
  const request = new Request('http://stub/storage/v1/object/b/dir/a.png', { method: 'POST', body, headers: { 'x-upsert': 'false' } })
  const bytes = Buffer.from(await request.arrayBuffer())
  let head = `POST /storage/v1/object/b/dir/a.png HTTP/1.1\r\n`
  for (const [k, v] of request.headers) head += `${k}: ${v}\r\n`
  head += `content-length: ${bytes.length}\r\n\r\n`
  writeFileSync(`${out}/${name}`, Buffer.concat([Buffer.from(head), bytes]))
  console.log(name, bytes.length)
}
await capture('storage-js-blob.http', false)
await capture('storage-js-blob-metadata.http', true)
