import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildSchema, parse, validate } from 'graphql';
import { SCHEMA } from '../../src/server/graphql/schema.ts';
import * as queries from '../../web/src/queries.ts';

// The dashboard's documents against the server's schema: a renamed field fails here, not in a browser.
const documents = Object.entries(queries as Record<string, unknown>).filter((entry): entry is [string, string] => typeof entry[1] === 'string' && /^\s*(query|mutation)\s/.test(entry[1]));

describe('dashboard GraphQL documents', () => {
  const schema = buildSchema(SCHEMA);

  it('include one for every root field the dashboard uses', () => {
    assert.ok(documents.length >= 15, `found ${documents.length} documents`);
  });

  for (const [name, text] of documents) {
    it(`${name} is valid against the schema`, () => {
      const errors = validate(schema, parse(text));
      assert.deepEqual(
        errors.map((e) => e.message),
        [],
      );
    });
  }

  it('a document that names a field the schema lacks is caught', () => {
    const errors = validate(schema, parse('query { me { nickname } }'));
    assert.equal(errors.length, 1);
    assert.match(errors[0]?.message ?? '', /nickname/);
  });
});
