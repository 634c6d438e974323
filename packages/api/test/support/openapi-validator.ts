import { Ajv2020 } from 'ajv/dist/2020.js'
import addFormats from 'ajv-formats'
import type { LightMyRequestResponse } from 'fastify'

export interface SpecValidator {
  document: OpenApiDocument
  /** Throws unless the response's status and content type are documented and its body matches the schema. */
  assertResponse(method: string, url: string, response: LightMyRequestResponse): void
}

interface OpenApiDocument {
  paths: Record<
    string,
    Record<string, { responses?: Record<string, { content?: Record<string, { schema?: unknown }> }> }>
  >
  components?: unknown
}

function pointerEscape(segment: string): string {
  return segment.replaceAll('~', '~0').replaceAll('/', '~1')
}

export async function createSpecValidator(raw: unknown): Promise<SpecValidator> {
  const document = structuredClone(raw) as OpenApiDocument
  const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: true })
  addFormats.default(ajv)
  // The whole document is one schema resource, so `#/components/schemas/X` refs resolve inside it.
  ajv.addSchema({ $id: 'openapi', paths: document.paths, components: document.components })

  return {
    document,
    assertResponse(method, url, response) {
      const path = new URL(url, 'http://x').pathname
      const operations = document.paths[path]
      if (!operations) return // unknown path: the 404 problem, not part of any operation
      const verb = method.toLowerCase()
      const operation = operations[verb]
      if (!operation) {
        // An undeclared method on a known path: the 405 problem, which belongs to no operation.
        if (response.statusCode === 405) return
        throw new Error(`${method} ${path} is not documented`)
      }
      const status = String(response.statusCode)
      const documented = operation.responses?.[status]
      if (!documented) {
        throw new Error(`${method} ${path} answered ${status}, which is not documented: ${response.body}`)
      }
      const contentType = String(response.headers['content-type'] ?? '')
        .split(';')[0]!
        .trim()
      const content = documented.content?.[contentType]
      if (!content) {
        throw new Error(`${method} ${path} ${status}: content type ${contentType} is not documented`)
      }
      if (content.schema === undefined || !contentType.includes('json')) return
      const ref = `openapi#/paths/${pointerEscape(path)}/${verb}/responses/${status}/content/${pointerEscape(contentType)}/schema`
      const validate = ajv.getSchema(ref) ?? ajv.compile({ $ref: ref })
      if (!validate(JSON.parse(response.body))) {
        throw new Error(
          `${method} ${url} ${status} does not match its documented schema: ${ajv.errorsText(validate.errors)}\n${response.body}`,
        )
      }
    },
  }
}
