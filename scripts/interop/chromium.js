// What the headless Chromium tests share (browser.js, demo.js): playwright-core from
// scripts/node and the launch options of Debian's chromium.
'use strict';
const path = require('path');
const { chromium } = require(path.join(__dirname, '..', 'node', 'node_modules', 'playwright-core'));

const CHROMIUM = '/usr/bin/chromium';

// Options for chromium.launch / launchPersistentContext.
function launchOptions() {
  return {
    executablePath: CHROMIUM,
    headless: true,
    timeout: 30000,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      // Chromium 142+ blocks connections from a public context (about:blank counts as
      // one) to loopback addresses unless the user allows it (Local Network Access);
      // a headless run has nobody to ask, and granting the permission does not apply
      // to about:blank's opaque origin.
      '--disable-features=LocalNetworkAccessChecks',
    ],
  };
}

module.exports = { chromium, CHROMIUM, launchOptions };
