// Runs graphql-http's GraphQL-over-HTTP server audit against one URL, prints every
// result, and exits 1 when any audit ends in an error or a warning (notices are
// printed but pass: they are the spec's MAYs). Usage: node audit.mjs http://host:port/graphql
import { auditServer } from 'graphql-http';

const url = process.argv[2];
if (!url) {
  console.error('usage: node audit.mjs <graphql url>');
  process.exit(2);
}

const results = await auditServer({ url });
const counts = { ok: 0, notice: 0, warn: 0, error: 0 };
for (const result of results) {
  counts[result.status] += 1;
  if (result.status === 'ok') {
    console.log(`ok      ${result.id} ${result.name}`);
    continue;
  }
  let body = '';
  try {
    body = await result.response.text();
  } catch {
    body = '(body already read)';
  }
  console.log(
    `${result.status.padEnd(7)} ${result.id} ${result.name}\n` +
      `        reason: ${result.reason}\n` +
      `        response: ${result.response.status} ${result.response.headers.get('content-type') ?? ''} ${body.slice(0, 300)}`,
  );
}
console.log(
  `graphql-http audit of ${url}: ${counts.ok} ok, ${counts.notice} notices, ${counts.warn} warnings, ${counts.error} errors`,
);
process.exit(counts.warn + counts.error > 0 ? 1 : 0);
