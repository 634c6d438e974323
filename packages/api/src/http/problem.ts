import { type ErrorCode, IntellisiteError } from '@intellisite/common'
import { z } from 'zod'
import { ERROR_STATUSES, type ProblemCode } from './error-statuses.js'

const fieldErrorSchema = z.object({
  in: z.string().describe('Where the invalid value was: body, querystring, params, headers'),
  path: z.string().describe('JSON pointer to the invalid value within that location'),
  message: z.string(),
})

/** RFC 9457 problem details, plus a stable `code` and the request id for support. */
export const problemSchema = z
  .object({
    type: z.string().describe('URI identifying the problem type'),
    title: z.string().describe('Short, human-readable summary of the problem type'),
    status: z.number().int().describe('HTTP status code'),
    detail: z.string().optional().describe('Explanation specific to this occurrence'),
    instance: z.string().describe('The request path that caused the problem'),
    code: z.string().describe('Stable machine-readable error code'),
    requestId: z.string().describe('Request id, also in the `x-request-id` header and the logs'),
    errors: z
      .array(fieldErrorSchema)
      .optional()
      .describe('One entry per invalid field (validation errors only)'),
  })
  .meta({
    id: 'Problem',
    examples: [
      {
        type: 'urn:intellisite:problem:validation-failed',
        title: 'Bad Request',
        status: 400,
        detail: 'The request is invalid: querystring/limit: Too big: expected number to be <=1000',
        instance: '/detections?limit=5000',
        code: 'VALIDATION_FAILED',
        requestId: '5f0c1a8e-2b1d-4d7e-9a53-0c7f0e6b9a11',
        errors: [{ in: 'querystring', path: '/limit', message: 'Too big: expected number to be <=1000' }],
      },
    ],
  })

export type Problem = z.infer<typeof problemSchema>
export type ProblemFieldError = NonNullable<Problem['errors']>[number]

/** A row of an uploaded file (a `text/csv` body) that was refused, by its line number. */
export const problemRowErrorSchema = z.object({
  line: z.number().int().min(1).describe('Line of the file where the row starts (1 = the first line)'),
  reason: z.string(),
})
export type ProblemRowError = z.infer<typeof problemRowErrorSchema>

/** The problem of a route taking a file: its `errors` name invalid fields or invalid rows. */
export const rowsProblemSchema = problemSchema
  .extend({
    errors: z
      .array(z.union([fieldErrorSchema, problemRowErrorSchema]))
      .optional()
      .describe('Invalid fields (validation errors) or invalid rows of the file, by line'),
  })
  .meta({
    id: 'RowsProblem',
    examples: [
      {
        type: 'urn:intellisite:problem:invalid-csv',
        title: 'Bad Request',
        status: 400,
        detail: '1 row is invalid; nothing was applied.',
        instance: '/rules/0b7d2c44-5a7e-4d59-9a53-1f3e0b8f8c11/entries',
        code: 'INVALID_CSV',
        requestId: '5f0c1a8e-2b1d-4d7e-9a53-0c7f0e6b9a11',
        errors: [
          { line: 3, reason: 'expected 2 columns (make,model) or 4 (make,model,year_min,year_max), found 3' },
        ],
      },
    ],
  })

export function problemType(code: ErrorCode): string {
  return `urn:intellisite:problem:${code.toLowerCase().replaceAll('_', '-')}`
}

/**
 * A problem a route answers with on purpose: its stable code and message are public, its status is
 * the code's (see `ERROR_STATUSES`). For what only a route knows (a rule that is not the caller's, a
 * CSV row that is wrong); errors of the layers below keep their own classes and codes. Rendered as
 * problem+json by the error handler, for REST routes and the alerts stream alike.
 */
export class HttpError<C extends ProblemCode = ProblemCode> extends IntellisiteError<C> {
  /** Also read by Fastify when the error is answered outside our error handler. */
  readonly statusCode: number
  readonly errors: (ProblemFieldError | ProblemRowError)[] | undefined
  readonly headers: Record<string, string> | undefined
  constructor(
    code: C,
    message: string,
    options: {
      cause?: unknown
      errors?: (ProblemFieldError | ProblemRowError)[]
      headers?: Record<string, string>
    } = {},
  ) {
    super(code, message, { cause: options.cause })
    this.statusCode = ERROR_STATUSES[code]
    this.errors = options.errors
    this.headers = options.headers
  }
}

/** Response schemas for the error statuses a route can answer with. */
export function problemResponses<const S extends readonly number[]>(
  ...statuses: S
): { [K in S[number]]: typeof problemSchema } {
  return Object.fromEntries(statuses.map((status) => [status, problemSchema])) as {
    [K in S[number]]: typeof problemSchema
  }
}
