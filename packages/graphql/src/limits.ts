import type { IncomingMessage } from 'node:http';
import { maxAliasesRule } from '@escape.tech/graphql-armor-max-aliases';
import { maxDepthRule } from '@escape.tech/graphql-armor-max-depth';
import {
  NoSchemaIntrospectionCustomRule,
  parse,
  type ExecutionArgs,
  type ExecutionResult,
  type GraphQLError,
  type Source,
  type ValidationContext,
  type ValidationRule,
} from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { markSubscription } from '@stockflow/platform';
import type { costLimit } from './cost.ts';

/** What every document must keep within, at a service and at the gateway. */
export interface GraphqlLimits {
  maxDepth: number;
  maxAliases: number;
  maxCost: number;
  maxTokens: number;
  introspection: boolean;
}

/**
 * The validation rules that enforce the limits (the token limit is the parser's; the cost, which
 * depends on the variables, is counted before each execution by `costLimit`).
 */
export function limitRules(limits: Omit<GraphqlLimits, 'maxCost'>): ValidationRule[] {
  // Reported as validation errors (GRAPHQL_VALIDATION_FAILED) rather than thrown.
  const report = {
    exposeLimits: true,
    propagateOnRejection: false,
    onReject: [(context: ValidationContext | null, error: GraphQLError) => context?.reportError(error)],
  };
  return [
    maxDepthRule({ n: limits.maxDepth, ignoreIntrospection: true, ...report }),
    maxAliasesRule({ n: limits.maxAliases, ...report }),
    ...(limits.introspection ? [] : [NoSchemaIntrospectionCustomRule]),
  ];
}

/**
 * The limits as one Yoga plugin, for the gateway's Hive runtime on the supergraph (the services
 * judge with `documentPreparer` and `costLimit` in their own pipeline; the supergraph's lists keep their services' `@listSize`, so the whole operation is held to what the
 * services apply to their shares): tokens while parsing; depth, aliases and introspection in
 * validation; the cost (`tooCostly`, with the request's variables) before an operation runs or a
 * subscription starts. A subscription's request is marked too: its stream never ends by itself,
 * so a shutdown closes it rather than wait for it (a query or mutation sent over SSE is answered,
 * then ends).
 */
export function limitsPlugin(limits: Omit<GraphqlLimits, 'maxCost'>, tooCostly: ReturnType<typeof costLimit>): Plugin {
  const rules = limitRules(limits);
  const stopIfTooCostly = (hook: { args: ExecutionArgs; setResultAndStopExecution: (result: ExecutionResult) => void }) => {
    const error = tooCostly(hook.args.document, hook.args.operationName, hook.args.variableValues);
    if (error) hook.setResultAndStopExecution({ errors: [error] });
  };
  return {
    onParse({ setParseFn }) {
      setParseFn((source: string | Source) => parse(source, { maxTokens: limits.maxTokens }));
    },
    onValidate({ addValidationRule }) {
      for (const rule of rules) addValidationRule(rule);
    },
    onExecute: stopIfTooCostly,
    onSubscribe(hook) {
      const { req } = hook.args.contextValue as { req?: IncomingMessage };
      if (req) markSubscription(req);
      stopIfTooCostly(hook);
    },
  };
}
