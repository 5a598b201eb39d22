import type { Command } from 'commander';

/** Manages the key-ring files of the local provider. */
export function registerKeyringCommands(program: Command): void {
  const keyring = program.command('keyring').description("manage a local provider's key-ring file");
  keyring
    .command('create')
    .description('write a new key ring with one fresh key (mode 0600); refuses to overwrite')
    .requiredOption('-f, --file <path>', 'key-ring file')
    .action(async (options: { file: string }) => {
      const { access } = await import('node:fs/promises');
      const exists = await access(options.file).then(
        () => true,
        () => false,
      );
      if (exists) throw new Error(`${options.file} exists; use "keyring rotate" to add a key`);
      const { createKeyRingFile } = await import('@trousseau/provider-local');
      const id = await createKeyRingFile(options.file);
      process.stdout.write(`created ${options.file} with current key ${id}\n`);
    });
  keyring
    .command('rotate')
    .description('add a fresh key and make it current; older keys stay to decrypt older data')
    .requiredOption('-f, --file <path>', 'key-ring file')
    .action(async (options: { file: string }) => {
      const { rotateKeyRingFile } = await import('@trousseau/provider-local');
      const id = await rotateKeyRingFile(options.file);
      process.stdout.write(`rotated ${options.file}: current key is now ${id}\n`);
    });
}
