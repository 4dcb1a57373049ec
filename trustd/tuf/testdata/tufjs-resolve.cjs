// Resolves target names with tuf-js, the JavaScript TUF client, as a client
// of trustd would: the pinned root.json, a cache directory, trustd's metadata
// URL. Delegated roles need a bearer token: TUF_TOKEN, sent by a fetcher built
// on tuf-js's BaseFetcher.
//
//   node tufjs-resolve.cjs <node_modules> <metadata URL> <root.json> <cache dir> <name>...
//
// Prints one JSON array: per name {"name", "result": "found" | "not-found" |
// "error", "sha256", "length", "error"}. Each name gets a new Updater (one
// refresh each) on the same cache, as a client refreshing before each lookup.
'use strict';

const fs = require('fs');
const path = require('path');

async function main() {
  const [modules, metadataUrl, rootPath, cacheDir, ...names] = process.argv.slice(2);
  const { Updater, BaseFetcher } = require(path.join(modules, 'tuf-js'));
  // The updater tells "no newer root" (a 404) from a failure by this type.
  const { DownloadHTTPError } = require(path.join(modules, 'tuf-js', 'dist', 'error'));

  class TokenFetcher extends BaseFetcher {
    async fetch(url) {
      const headers = {};
      if (process.env.TUF_TOKEN) {
        headers.Authorization = 'Bearer ' + process.env.TUF_TOKEN;
      }
      const response = await fetch(url, { headers, signal: AbortSignal.timeout(10000) });
      if (!response.ok || !response.body) {
        throw new DownloadHTTPError(`GET ${url}: ${response.status}`, response.status);
      }
      return response.body;
    }
  }

  fs.mkdirSync(cacheDir, { recursive: true });
  if (!fs.existsSync(path.join(cacheDir, 'root.json'))) {
    fs.copyFileSync(rootPath, path.join(cacheDir, 'root.json'));
  }
  const out = [];
  for (const name of names) {
    try {
      const updater = new Updater({
        metadataBaseUrl: metadataUrl,
        metadataDir: cacheDir,
        fetcher: new TokenFetcher(),
      });
      await updater.refresh();
      const info = await updater.getTargetInfo(name);
      if (info === undefined) {
        out.push({ name, result: 'not-found' });
      } else {
        out.push({ name, result: 'found', sha256: info.hashes.sha256, length: info.length });
      }
    } catch (e) {
      out.push({ name, result: 'error', error: String(e && e.stack ? e.message : e) });
    }
  }
  process.stdout.write(JSON.stringify(out) + '\n');
}

main().catch((e) => {
  process.stderr.write(String(e && e.stack ? e.stack : e) + '\n');
  process.exit(2);
});
