// The README's settings list is generated from the settings table and must match it.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { it } from 'node:test';
import { withSettingsTable } from '../scripts/readme-settings.ts';
import { ROOT } from './helpers.ts';

it('README.md lists every setting as the table defines it (regenerate: scripts/readme-settings.ts)', () => {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  assert.equal(readme, withSettingsTable(readme));
});
