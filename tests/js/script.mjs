// What the SDK-driving scripts here share: the SDKs they drive, a console that leaves stdout to
// the script's one JSON report, and how a script reads its settings and fails.

import path from 'node:path';

export const SDKS = ['@moltin/sdk', '@elasticpath/js-sdk'];

export const ADDRESS = {
  first_name: 'Ron',
  last_name: 'Swanson',
  line_1: '1 Sun Street',
  city: 'London',
  postcode: 'E1 6AN',
  country: 'GB',
};

// The SDKs log (e.g. "Token status: ...") with console.*, which writes to stdout.
for (const level of ['log', 'info', 'debug', 'warn']) {
  console[level] = (...args) => process.stderr.write(`[sdk console.${level}] ${args.join(' ')}\n`);
}

export function fail(message) {
  process.stderr.write(`${path.basename(process.argv[1])}: ${message}\n`);
  process.exit(2);
}

export function required(name) {
  const value = process.env[name];
  if (!value) fail(`${name} is required`);
  return value;
}

// The package named by $SDK, or `fallback`; anything else is a mistake in the caller.
export function sdkName(fallback) {
  const name = process.env.SDK || fallback;
  if (!SDKS.includes(name)) fail(`SDK must be one of ${SDKS.join(', ')}, got ${name}`);
  return name;
}

// An SDK rejects with the parsed JSON body of an HTTP error; anything else is a thrown Error.
export function describe(err) {
  if (err instanceof Error) return { error_class: err.constructor.name, message: err.message, stack: err.stack };
  return err;
}
