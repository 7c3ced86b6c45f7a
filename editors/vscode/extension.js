// The resnetc extension: .resnet highlighting comes from the grammar in package.json; this file
// starts the language server, `resnetc lsp` (stdio), for .resnet documents.
'use strict';

const path = require('path');
const vscode = require('vscode');
const { LanguageClient, TransportKind } = require('vscode-languageclient/node');

/** @type {LanguageClient | undefined} */
let client;

/** The server command from the `resnetc.server.path` setting, with `${workspaceFolder}` and a
 * leading `~` expanded (VS Code does not expand variables in settings itself). */
function serverCommand() {
  const configured = vscode.workspace.getConfiguration('resnetc').get('server.path') || 'resnetc';
  const folders = vscode.workspace.workspaceFolders;
  const folder = folders && folders.length > 0 ? folders[0].uri.fsPath : '';
  let command = configured.replace(/\$\{workspaceFolder\}/g, folder);
  if (command === '~' || command.startsWith('~/')) {
    command = path.join(require('os').homedir(), command.slice(1));
  }
  return command;
}

async function startClient() {
  const command = serverCommand();
  const serverOptions = { command, args: ['lsp'], transport: TransportKind.stdio };
  const clientOptions = {
    documentSelector: [
      { scheme: 'file', language: 'resnet' },
      { scheme: 'untitled', language: 'resnet' },
    ],
  };
  client = new LanguageClient('resnetc', 'resnetc language server', serverOptions, clientOptions);
  try {
    await client.start();
  } catch (err) {
    // Most often resnetc is not installed where the setting says; highlighting still works.
    client = undefined;
    vscode.window.showErrorMessage(
      `Could not start the resnetc language server ("${command} lsp"): ${err && err.message ? err.message : err}. ` +
        'Install resnetc or set "resnetc.server.path".',
    );
  }
}

async function stopClient() {
  if (client) {
    const running = client;
    client = undefined;
    await running.stop();
  }
}

async function restartClient() {
  await stopClient();
  await startClient();
}

/** @param {vscode.ExtensionContext} context */
async function activate(context) {
  context.subscriptions.push(
    vscode.commands.registerCommand('resnetc.restartServer', restartClient),
    vscode.workspace.onDidChangeConfiguration((event) => {
      if (event.affectsConfiguration('resnetc.server.path')) {
        restartClient();
      }
    }),
  );
  await startClient();
}

function deactivate() {
  return stopClient();
}

module.exports = { activate, deactivate };
