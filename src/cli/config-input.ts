import type { Command } from 'commander';
import { parse } from 'yaml';
import { layerAt, mergeConfig, type ConfigLayer } from '../core/index.ts';
import { readFlagFile } from './flags.ts';

/**
 * The flags actually typed, as a config layer. Commander also reports its own defaults
 * (-n's meshid-system) as values; taking those would override the file and environment
 * with a default, so only values whose source is the command line count.
 */
export function givenFlags(command: Command, table: Readonly<Record<string, string>>): ConfigLayer {
  const layers: ConfigLayer[] = [];
  for (const [attribute, path] of Object.entries(table)) {
    // A global flag lives on the program; a command's own on the command.
    for (let c: Command | null = command; c; c = c.parent) {
      if (c.getOptionValueSource(attribute) === 'cli') {
        layers.push(layerAt(path, c.getOptionValue(attribute) as unknown));
        break;
      }
    }
  }
  return mergeConfig(...layers);
}

/** The YAML file named by the command's --config, as the lowest config layer; none without the flag. */
export async function configFile(command: Command): Promise<ConfigLayer> {
  const file = command.getOptionValue('config') as string | undefined;
  return file ? ((parse(await readFlagFile('--config', file)) as ConfigLayer | null) ?? {}) : {};
}
