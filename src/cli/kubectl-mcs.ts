#!/usr/bin/env node
// `kubectl mcs …`: the kubectl plugin (kubectl runs `kubectl-mcs` from PATH with the words after `mcs`); the same
// command line as `mcs-gossip`, e.g. `kubectl mcs status --all-contexts`, `kubectl mcs diagnose`.
import './main.js';
