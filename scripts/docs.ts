import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  CONFIGURATION_PAGE,
  configJsonSchema,
  configJsonSchemaText,
  configReferenceMarkdown,
  JSON_SCHEMA_FILE,
} from './config-reference.js';

/** `npm run docs`: writes the configuration reference and the config's JSON Schema from the zod schema. */
const root = fileURLToPath(new URL('../', import.meta.url));
writeFileSync(`${root}${JSON_SCHEMA_FILE}`, configJsonSchemaText());
writeFileSync(`${root}${CONFIGURATION_PAGE}`, configReferenceMarkdown(configJsonSchema()));
console.log(`wrote ${JSON_SCHEMA_FILE} and ${CONFIGURATION_PAGE}`);
