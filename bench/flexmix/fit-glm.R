# R's flexmix on the toolkit's GLM experts (docs/math.md §12): Poisson (log link) or binomial 0/1 (logit link)
# experts with intercepts, a softmax gate on the same covariates; one fit from one seeded start, EM to a relative
# tolerance, the model written in the toolkit's JSON schema so that `moe eval` scores it against the truth.
# Usage: Rscript bench/flexmix/fit-glm.R data.csv k poisson|bernoulli model.json [tolerance]
suppressMessages(library(flexmix))
args <- commandArgs(TRUE)
data <- read.csv(args[1])
k <- as.integer(args[2])
family <- args[3]
tolerance <- if (length(args) >= 5) as.numeric(args[5]) else 1e-8
xs <- setdiff(names(data), "y")
started <- proc.time()[["elapsed"]]
set.seed(1)
glm <- FLXMRglm(family = if (family == "poisson") "poisson" else "binomial")
fit <- flexmix(as.formula(paste(if (family == "poisson") "y" else "cbind(y, 1 - y)", "~", paste(xs, collapse = " + "))),
               data = data, k = k, model = glm,
               concomitant = FLXPmultinom(as.formula(paste("~", paste(xs, collapse = " + ")))),
               control = list(tolerance = tolerance, iter.max = 2000))
seconds <- proc.time()[["elapsed"]] - started
p <- parameters(fit)                                  # rows coef.(Intercept), coef.x1..; a column per expert
w <- fit@concomitant@coef                             # rows (Intercept), x1..; expert 1 is flexmix's reference
kk <- ncol(p)
row <- function(v) paste0("[", paste(sprintf("%.17g", v), collapse = ", "), "]")
a <- t(p[paste0("coef.", xs), , drop = FALSE])
gate <- t(w[xs, , drop = FALSE]); gate <- sweep(gate, 2, gate[kk, ])      # the toolkit's reference: the last expert
json <- paste0('{\n  "k": ', kk, ',\n  "d": ', length(xs), ',\n  "activation": { "name": "identity", "slope": 0 },\n',
  '  "family": "', family, '",\n',
  '  "regressors": [', paste(apply(a, 1, row), collapse = ", "), '],\n',
  '  "gating": [', paste(apply(gate[-kk, , drop = FALSE], 1, row), collapse = ", "), '],\n',
  '  "regressorIntercepts": ', row(p["coef.(Intercept)", ]), ',\n',
  '  "gatingIntercepts": ', row((w["(Intercept)", ] - w["(Intercept)", kk])[-kk]), '\n}\n')
writeLines(json, args[4])
cat(sprintf("flexmix: k = %d, %s, %d EM iterations, log-likelihood %.6f, fit %.2f s\n", kk, family, fit@iter, logLik(fit), seconds))
