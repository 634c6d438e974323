import { IntellisiteError } from '@intellisite/common'
import { z } from 'zod'

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
      .array(
        z.object({
          in: z.string().describe('Where the invalid value was: body, querystring, params, headers'),
          path: z.string().describe('JSON pointer to the invalid value within that location'),
          message: z.string(),
        }),
      )
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

export function problemType(code: string): string {
  return `urn:intellisite:problem:${code.toLowerCase().replaceAll('_', '-')}`
}

/**
 * An error the API answers with on purpose: its status, stable code and message are public. The
 * one error class of the HTTP layer (REST routes and the alerts stream alike), rendered as
 * problem+json by the error handler.
 */
export class HttpError extends IntellisiteError {
  readonly statusCode: number
  readonly errors: ProblemFieldError[] | undefined
  readonly headers: Record<string, string> | undefined
  constructor(
    statusCode: number,
    code: string,
    message: string,
    options: { cause?: unknown; errors?: ProblemFieldError[]; headers?: Record<string, string> } = {},
  ) {
    super(code, message, { cause: options.cause, retriable: statusCode === 429 || statusCode === 503 })
    this.statusCode = statusCode
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
