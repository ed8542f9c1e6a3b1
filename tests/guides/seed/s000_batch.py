"""Seed 000 (Advanced Patterns), verbatim but for the URL and the logger import."""

import asyncio
from typing import List, Dict, Any, Callable, Optional
from dataclasses import dataclass
from flext_api import create_flext_api
from flext_api import FlextResult, get_logger  # the guide: from flext_core

logger = get_logger(__name__)

# The guide calls https://httpbin.org; the tests point this at the local httpbin server.
BASE_URL = "https://httpbin.org"

@dataclass
class BatchRequest:
    """Request item for batch processing."""
    id: str
    method: str
    path: str
    data: Optional[Dict[str, Any]] = None
    params: Optional[Dict[str, Any]] = None

@dataclass
class BatchResult:
    """Result item from batch processing."""
    request_id: str
    success: bool
    data: Optional[Dict[str, Any]] = None
    error: Optional[str] = None
    duration_ms: float = 0.0

class BatchProcessor:
    """Advanced batch processing for HTTP requests."""

    def __init__(self, base_url: str, max_concurrent: int = 10, timeout: int = 30):
        self.api = create_flext_api()
        self.base_url = base_url
        self.max_concurrent = max_concurrent
        self.timeout = timeout
        self.client = None

        # Statistics
        self.total_requests = 0
        self.successful_requests = 0
        self.failed_requests = 0

    def initialize(self) -> FlextResult[bool]:
        """Initialize the batch processor."""
        client_result = self.api.flext_api_create_client({
            "base_url": self.base_url,
            "timeout": self.timeout,
            "headers": {
                "User-Agent": "FLEXT-BatchProcessor/0.9.0"
            }
        })

        if client_result.success:
            self.client = client_result.data
            logger.info("Batch processor initialized",
                       base_url=self.base_url,
                       max_concurrent=self.max_concurrent)
            return FlextResult.ok(data=True)
        else:
            logger.error("Batch processor initialization failed", error=client_result.error)
            return FlextResult.fail(client_result.error)

    async def process_batch(self, requests: List[BatchRequest],
                          progress_callback: Optional[Callable[[int, int], None]] = None) -> List[BatchResult]:
        """Process a batch of requests with concurrency control."""

        if not self.client:
            raise RuntimeError("Batch processor not initialized")

        logger.info(f"Processing batch of {len(requests)} requests")

        # Create semaphore for concurrency control
        semaphore = asyncio.Semaphore(self.max_concurrent)

        # Create tasks for all requests
        tasks = [
            self._process_single_request(semaphore, request, i, len(requests), progress_callback)
            for i, request in enumerate(requests)
        ]

        # Execute all tasks
        results = await asyncio.gather(*tasks, return_exceptions=True)

        # Process results and handle exceptions
        batch_results = []
        for i, result in enumerate(results):
            if isinstance(result, Exception):
                batch_results.append(BatchResult(
                    request_id=requests[i].id,
                    success=False,
                    error=f"Exception: {str(result)}"
                ))
                self.failed_requests += 1
            else:
                batch_results.append(result)
                if result.success:
                    self.successful_requests += 1
                else:
                    self.failed_requests += 1

        self.total_requests += len(requests)

        logger.info("Batch processing completed",
                   total=self.total_requests,
                   successful=self.successful_requests,
                   failed=self.failed_requests,
                   success_rate=f"{(self.successful_requests/self.total_requests)*100:.1f}%")

        return batch_results

    async def _process_single_request(self, semaphore: asyncio.Semaphore,
                                    request: BatchRequest,
                                    index: int,
                                    total: int,
                                    progress_callback: Optional[Callable[[int, int], None]]) -> BatchResult:
        """Process a single request with semaphore control."""

        async with semaphore:
            start_time = asyncio.get_event_loop().time()

            try:
                # Execute request in thread pool
                loop = asyncio.get_event_loop()

                if request.method.upper() == "GET":
                    response = await loop.run_in_executor(
                        None,
                        lambda: self.client.get(request.path, params=request.params)
                    )
                elif request.method.upper() == "POST":
                    response = await loop.run_in_executor(
                        None,
                        lambda: self.client.post(request.path, json=request.data, params=request.params)
                    )
                else:
                    return BatchResult(
                        request_id=request.id,
                        success=False,
                        error=f"Unsupported method: {request.method}"
                    )

                duration = (asyncio.get_event_loop().time() - start_time) * 1000

                # Update progress
                if progress_callback:
                    progress_callback(index + 1, total)

                if response.success:
                    return BatchResult(
                        request_id=request.id,
                        success=True,
                        data=response.data,
                        duration_ms=duration
                    )
                else:
                    return BatchResult(
                        request_id=request.id,
                        success=False,
                        error=response.error,
                        duration_ms=duration
                    )

            except Exception as e:
                duration = (asyncio.get_event_loop().time() - start_time) * 1000
                logger.exception(f"Request {request.id} failed")
                return BatchResult(
                    request_id=request.id,
                    success=False,
                    error=str(e),
                    duration_ms=duration
                )

async def batch_processing_example():
    """Example of advanced batch processing."""

    processor = BatchProcessor(BASE_URL, max_concurrent=5)
    init_result = processor.initialize()

    if not init_result.success:
        logger.error("Failed to initialize batch processor")
        return

    # Create batch requests
    requests = [
        BatchRequest(id=f"req_{i}", method="GET", path="/get", params={"index": i})
        for i in range(20)
    ]

    # Add some POST requests
    requests.extend([
        BatchRequest(
            id=f"post_{i}",
            method="POST",
            path="/post",
            data={"message": f"Batch message {i}", "timestamp": f"2024-01-{i:02d}"}
        )
        for i in range(1, 6)
    ])

    # Progress callback
    def progress_callback(completed: int, total: int):
        percentage = (completed / total) * 100
        logger.info(f"Progress: {completed}/{total} ({percentage:.1f}%)")

    # Process batch
    results = await processor.process_batch(requests, progress_callback)

    # Analyze results
    successful = [r for r in results if r.success]
    failed = [r for r in results if not r.success]

    if successful:
        avg_duration = sum(r.duration_ms for r in successful) / len(successful)
        logger.info(f"Successful requests: {len(successful)}, avg duration: {avg_duration:.1f}ms")

    if failed:
        logger.warning(f"Failed requests: {len(failed)}")
        for failure in failed[:5]:  # Show first 5 failures
            logger.error(f"Failed request {failure.request_id}: {failure.error}")

# Usage
# asyncio.run(batch_processing_example())
