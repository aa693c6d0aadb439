// Preloaded into kinesis-local (node --require) by servicetest.
//
// 1. kinesis-mock hard-codes the host 0.0.0.0 (there is no setting for it)
//    and for a wildcard host calls server.listen(port, callback). Every
//    listen without a host binds 127.0.0.1 instead, so tests never listen
//    on the network.
// 2. On SIGTERM kinesis-mock waits up to 30 s for idle keep-alive
//    connections to close. Tests keep no data in it (SHOULD_PERSIST_DATA is
//    false), so exit at once, with the real process.exit (cats-effect
//    replaces it with its own graceful exit).
'use strict';
const net = require('net');
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  const port = args[0];
  const isPort = typeof port === 'number' || (typeof port === 'string' && /^\d+$/.test(port));
  if (isPort && (args.length === 1 || typeof args[1] === 'function')) {
    args.splice(1, 0, '127.0.0.1');
  } else if (port !== null && typeof port === 'object' && !port.path && !port.host) {
    args[0] = Object.assign({}, port, { host: '127.0.0.1' });
  }
  return listen.apply(this, args);
};
const exit = process.exit.bind(process);
process.on('SIGTERM', () => exit(0));
