import { STATUS_CODES } from 'node:http'
import { type ErrorCode, errorCode } from '@intellisite/common'
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { errorStatus } from '../http/error-statuses.js'
import { type Problem, type ProblemFieldError, type ProblemRowError, problemType } from '../http/problem.js'

/** Our codes for the client errors Fastify and its plugins raise with codes of their own. */
const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_BODY_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'MALFORMED_BODY',
  FST_ERR_CTP_INVALID_JSON_BODY: 'MALFORMED_BODY',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'MALFORMED_BODY',
  FST_ERR_BAD_URL: 'BAD_URL',
  FST_ERR_ASYNC_CONSTRAINT: 'BAD_REQUEST',
}

/**
 * The code and status of any error: ours by the status table; Fastify's by its own status, under our
 * code for it (`BAD_REQUEST` for a client error we have no code for); anything else is a 500.
 */
function classify(err: FastifyError): { code: ErrorCode | undefined; status: number } {
  const ours = errorCode(err)
  if (ours !== undefined) return { code: ours, status: errorStatus(ours) }
  const status = typeof err.statusCode === 'number' ? err.statusCode : 500
  return { code: FASTIFY_CODES[err.code] ?? (status < 500 ? 'BAD_REQUEST' : undefined), status }
}

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')

interface ValidationIssue {
  instancePath?: string
  message?: string
  params?: Record<string, unknown>
}

function fieldErrors(err: FastifyError): ProblemFieldError[] {
  const location = err.validationContext ?? 'request'
  return (err.validation ?? []).map((issue: ValidationIssue) => {
    // Ajv reports a missing property on the parent; point at the property itself.
    const missing = issue.params?.missingProperty
    const path =
      typeof missing === 'string' ? `${issue.instancePath ?? ''}/${missing}` : issue.instancePath || '/'
    return { in: location, path, message: issue.message ?? 'is invalid' }
  })
}

export function sendProblem(
  request: FastifyRequest,
  reply: FastifyReply,
  status: number,
  code: ErrorCode,
  detail: string | undefined,
  errors?: (ProblemFieldError | ProblemRowError)[],
): FastifyReply {
  const problem: Omit<Problem, 'errors'> & { errors?: (ProblemFieldError | ProblemRowError)[] } = {
    type: problemType(code),
    title: STATUS_CODES[status] ?? 'Error',
    status,
    ...(detail !== undefined && { detail }),
    // The path only: a query string may carry a credential (`access_token` of an EventSource)
    // that must never be echoed back in a body that clients log and display.
    instance: request.url.split('?')[0] ?? '/',
    code,
    requestId: String(request.id),
    ...(errors !== undefined && errors.length > 0 && { errors }),
  }
  return reply.code(status).type('application/problem+json').send(problem)
}

/**
 * The one place errors become responses: RFC 9457 problem+json with a stable `code`. Client
 * errors say what is wrong; 5xx say nothing about internals (the log has them, under the same
 * request id).
 */
export const errorHandlerPlugin = fp(
  async (app) => {
    // Which methods each route path answers, so that a known path asked with another method gets
    // 405 and the methods it does allow (RFC 9110), not a 404 that says the resource is missing.
    const routes: { pattern: RegExp; methods: Set<string> }[] = []
    app.addHook('onRoute', (route) => {
      const pattern = new RegExp(
        `^${route.url
          .split(/(:[^/]+|\*)/)
          .map((part) => (part === '*' ? '.*' : part.startsWith(':') ? '[^/]+' : escapeRegExp(part)))
          .join('')}$`,
      )
      let entry = routes.find((r) => r.pattern.source === pattern.source)
      if (!entry) {
        entry = { pattern, methods: new Set() }
        routes.push(entry)
      }
      for (const method of [route.method].flat()) entry.methods.add(method.toUpperCase())
    })

    /** 405 for a known path asked with another method; undefined when the path is unknown. */
    const methodNotAllowed = (request: FastifyRequest, reply: FastifyReply) => {
      const path = request.url.split('?')[0] ?? '/'
      const allowed = [
        ...new Set(routes.filter((r) => r.pattern.test(path)).flatMap((r) => [...r.methods])),
      ].sort()
      // The method is allowed and its route itself found nothing (a static file that is not there):
      // that is a 404.
      if (allowed.length === 0 || allowed.includes(request.method)) return undefined
      reply.header('allow', allowed.join(', '))
      return sendProblem(
        request,
        reply,
        405,
        'METHOD_NOT_ALLOWED',
        `${request.method} is not allowed on ${path}; allowed: ${allowed.join(', ')}`,
      )
    }

    app.setErrorHandler(
      (
        err: FastifyError & {
          errors?: (ProblemFieldError | ProblemRowError)[]
          headers?: Record<string, string>
        },
        request,
        reply,
      ) => {
        // A body-carrying method (QUERY, PUT…) on no route fails body parsing before the not-found
        // handler runs; the method is still what is wrong.
        if ((request as { is404?: boolean }).is404) {
          const answered = methodNotAllowed(request, reply)
          if (answered) return answered
        }
        if (err.validation) {
          const errors = fieldErrors(err)
          const summary = errors.map((e) => `${e.in}${e.path}: ${e.message}`).join('; ')
          return sendProblem(
            request,
            reply,
            400,
            'VALIDATION_FAILED',
            `The request is invalid: ${summary}`,
            errors,
          )
        }
        const { code, status } = classify(err)
        if (code !== undefined && status >= 400 && status < 500) {
          if (err.headers) reply.headers(err.headers)
          request.log.info({ code, status }, 'request rejected')
          return sendProblem(request, reply, status, code, err.message, err.errors)
        }
        request.log.error({ err }, 'request failed')
        return sendProblem(
          request,
          reply,
          status >= 500 && status < 600 ? status : 500,
          status === 503 ? 'SERVICE_UNAVAILABLE' : 'INTERNAL_ERROR',
          'An unexpected error occurred. Quote the request id when reporting it.',
        )
      },
    )

    app.setNotFoundHandler(
      (request, reply) =>
        methodNotAllowed(request, reply) ??
        sendProblem(
          request,
          reply,
          404,
          'NOT_FOUND',
          `No route for ${request.method} ${request.url.split('?')[0]}`,
        ),
    )
  },
  { name: 'error-handler' },
)
